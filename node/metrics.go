package node

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/cluster"
	"github.com/switchboard/switchboard/fsm"
	"github.com/switchboard/switchboard/transport"
)

// Metrics are a node's Prometheus metrics, in a registry of its own (several
// nodes run in one test process, so nothing uses the global default
// registry). Names follow switchboard_<subsystem>_<name>_<unit>; counters
// end in _total. docs/OPERATIONS.md ("Monitoring") lists them all.
//
// What the node already knows — Raft's figures, the state's live numbers —
// is read at scrape time by collectors (raftCollector, domainCollector), so
// nothing is kept in sync by hand; only events (commands, deliveries,
// leader changes) are counted as they happen.
type Metrics struct {
	Registry *prometheus.Registry

	commands        *prometheus.CounterVec   // op, outcome
	commandSeconds  *prometheus.HistogramVec // op
	commandsRefused *prometheus.CounterVec   // code
	streams         *prometheus.GaugeVec     // role
	delivered       prometheus.Counter
	dropped         prometheus.Counter
}

// newMetrics builds the node's registry. The collectors that read the
// server's parts at scrape time are added by (*Server).registerCollectors.
func newMetrics(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_commands_total",
			Help: "Commands submitted through this node, by op and outcome (ok, or the error code's name: a business error applied as a no-op, or a failure to commit).",
		}, []string{"op", "outcome"}),
		commandSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "switchboard_commands_duration_seconds",
			Help:    "Time from submitting a command on this node to its answer (committed on a quorum and applied here), by op.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		commandsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_commands_refused_total",
			Help: "Writes refused before they were proposed (bad arguments, a role that may not send the op, an unknown op), by error code.",
		}, []string{"code"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_transport_streams",
			Help: "Event streams attached to client sessions on this node, by role (agent, connector).",
		}, []string{"role"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_events_delivered_total",
			Help: "Event frames (events and syncs) queued to client sessions on this node.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_events_sessions_dropped_total",
			Help: "Sessions whose outbox refused an event frame, so delivery to them stopped: a slow consumer cut off, or a session that had just closed.",
		}),
	}
	for _, r := range []string{"agent", "connector"} {
		m.streams.WithLabelValues(r)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Always 1; the version label is this node's build.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.Registry.MustRegister(m.commands, m.commandSeconds, m.commandsRefused, m.streams,
		m.delivered, m.dropped, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// outcome is the outcome label of a command: ok, or the error code's name.
func outcome(res fsm.Result, err error) string {
	if err == nil && res.Err == nil {
		return "ok"
	}
	if err == nil {
		err = res.Err
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code.String()
	}
	return "error"
}

// observeCommand counts one submitted command.
func (m *Metrics) observeCommand(op string, res fsm.Result, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(op, outcome(res, err)).Inc()
	m.commandSeconds.WithLabelValues(op).Observe(took.Seconds())
}

// observeRefused counts a write refused before it was proposed.
func (m *Metrics) observeRefused(err error) {
	if m == nil {
		return
	}
	code := "error"
	var ae *api.Error
	if errors.As(err, &ae) {
		code = ae.Code.String()
	}
	m.commandsRefused.WithLabelValues(code).Inc()
}

// countingOutbox counts the frames delivered to one session's outbox and
// whether it refused one. It has DeliverBatch when the outbox has it, so
// the actors still hand it frames in batches.
type countingOutbox struct {
	transport.Outbox
	m *Metrics
}

type batchOutbox interface {
	DeliverBatch(frames [][]byte) bool
}

type countingBatchOutbox struct {
	countingOutbox
	batch batchOutbox
}

func (o countingOutbox) Deliver(frame []byte) bool {
	ok := o.Outbox.Deliver(frame)
	o.m.countDelivery(1, ok)
	return ok
}

func (o countingBatchOutbox) DeliverBatch(frames [][]byte) bool {
	ok := o.batch.DeliverBatch(frames)
	o.m.countDelivery(len(frames), ok)
	return ok
}

func (m *Metrics) countDelivery(n int, ok bool) {
	if ok {
		m.delivered.Add(float64(n))
	} else {
		m.dropped.Inc()
	}
}

// wrapOutbox returns out counted, and the detach wrapper that keeps the
// stream gauge of role right.
func (m *Metrics) wrapAttach(role string, out transport.Outbox, attach func(transport.Outbox) func()) func() {
	if m == nil {
		return attach(out)
	}
	co := countingOutbox{Outbox: out, m: m}
	var wrapped transport.Outbox = co
	if b, ok := out.(batchOutbox); ok {
		wrapped = countingBatchOutbox{countingOutbox: co, batch: b}
	}
	g := m.streams.WithLabelValues(role)
	g.Inc()
	detach := attach(wrapped)
	var once sync.Once
	return func() {
		once.Do(func() {
			detach()
			g.Dec()
		})
	}
}

// countLeaderChanges exports the leader changes node has seen.
func (m *Metrics) countLeaderChanges(node *cluster.Node) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "switchboard_raft_leader_changes_total",
		Help: "Times this node saw the cluster's leader change to another server (elections it observed).",
	}, func() float64 { return float64(node.LeaderChanges()) }))
}
