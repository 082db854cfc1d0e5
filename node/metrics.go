package node

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/switchboard/switchboard/actors"
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
	resumes         prometheus.Counter
	syncs           *prometheus.CounterVec // reason
	// Raft (cluster.Observer).
	commitSeconds   prometheus.Histogram
	entryCommands   prometheus.Histogram
	logStoreSeconds prometheus.Histogram
	// Offers, from the applied log (observeApplied).
	offersMade  *prometheus.CounterVec // kind
	offersEnded *prometheus.CounterVec // outcome
	// Service-level changes, from the applied log (observeApplied).
	slaChanges *prometheus.CounterVec // state
}

// Values of switchboard_events_syncs_total's reason label.
const (
	syncNew      = "new"             // an attach without a cursor
	syncNotHeld  = "cursor_not_held" // a resume the history could not serve
	offerAccepts = "accepted"        // switchboard_offers_ended_total's outcome of accept_offer
)

// offerKinds and offerEnds are the label values the offer counters start
// with, so that every series exists from the first scrape.
var (
	offerKinds = []api.OfferKind{api.OfferRoute, api.OfferTransfer, api.OfferInvite}
	offerEnds  = []string{offerAccepts, api.WithdrawRejected, api.WithdrawTimeout, api.WithdrawNotReady,
		api.WithdrawLoggedOut, api.WithdrawClosed, api.WithdrawTransferred, api.WithdrawRemoved}
)

// latencyBuckets are the buckets of the latency histograms, in seconds:
// from a fast local fsync to a commit stalled by an election.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

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
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_events_resumes_total",
			Help: "Event streams attached on this node that resumed from the history: the events after the client's cursor replayed (possibly none).",
		}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_events_syncs_total",
			Help: "Event streams attached on this node that started with a full sync, by reason: new (no cursor) or cursor_not_held (a resume cursor the history no longer holds, or one beyond the log).",
		}, []string{"reason"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_raft_commit_duration_seconds",
			Help:    "Time from handing an entry this node proposed as the leader to Raft until it was committed on a quorum and applied here (log write, fsync and replication included), per entry.",
			Buckets: latencyBuckets,
		}),
		entryCommands: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_raft_entry_commands",
			Help:    "Commands per log entry this node proposed as the leader and committed (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024
		}),
		logStoreSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_raft_log_store_duration_seconds",
			Help:    "Time to write entries to this node's Raft log (one bolt transaction, fsynced), per write; leaders and followers alike.",
			Buckets: latencyBuckets,
		}),
		offersMade: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_offers_made_total",
			Help: "Offers made, by kind (route, transfer, invite), counted from the log this node applied (entries replayed at start-up included).",
		}, []string{"kind"}),
		offersEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_offers_ended_total",
			Help: "Offers that ended, by outcome: accepted, or the reason it was withdrawn (rejected, timeout, not_ready, logged_out, closed, transferred, removed), counted from the log this node applied.",
		}, []string{"outcome"}),
		slaChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sla_changes_total",
			Help: "Requests whose service level became warning, breached or met (request.sla), counted from the log this node applied.",
		}, []string{"state"}),
	}
	for _, st := range []api.SLAState{api.SLAWarning, api.SLABreached, api.SLAMet} {
		m.slaChanges.WithLabelValues(string(st))
	}
	for _, r := range []string{"agent", "connector"} {
		m.streams.WithLabelValues(r)
	}
	for _, r := range []string{syncNew, syncNotHeld} {
		m.syncs.WithLabelValues(r)
	}
	for _, k := range offerKinds {
		m.offersMade.WithLabelValues(string(k))
	}
	for _, o := range offerEnds {
		m.offersEnded.WithLabelValues(o)
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Always 1; the version label is this node's build.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.Registry.MustRegister(m.commands, m.commandSeconds, m.commandsRefused, m.streams,
		m.delivered, m.dropped, m.resumes, m.syncs, m.commitSeconds, m.entryCommands, m.logStoreSeconds,
		m.offersMade, m.offersEnded, m.slaChanges, build,
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

var _ cluster.Observer = (*Metrics)(nil)

// Committed implements cluster.Observer: the commit latency and the
// commands of an entry this node proposed.
func (m *Metrics) Committed(commands int, took time.Duration) {
	m.commitSeconds.Observe(took.Seconds())
	m.entryCommands.Observe(float64(commands))
}

// LogStored implements cluster.Observer: one write to the Raft log.
func (m *Metrics) LogStored(_ int, took time.Duration, _ error) {
	m.logStoreSeconds.Observe(took.Seconds())
}

// observeApplied counts the offers an applied entry made and ended, and
// its requests' service-level changes
// (cluster.FSM.SetApplied): offer.created by kind, offer.withdrawn by
// reason, and accept_offer applied without error as accepted. Every
// node applies the same log, so every node counts the same.
func (m *Metrics) observeApplied(_ uint64, cmds []*fsm.Command, results []fsm.Result, evs []fsm.Event) {
	for i := range evs {
		switch evs[i].Kind {
		case api.EvOfferCreated:
			if o, ok := evs[i].Data.(api.OfferInfo); ok {
				m.offersMade.WithLabelValues(string(o.Kind)).Inc()
			}
		case api.EvOfferWithdrawn:
			if w, ok := evs[i].Data.(api.OfferWithdrawn); ok {
				m.offersEnded.WithLabelValues(w.Reason).Inc()
			}
		case api.EvRequestSLA:
			if s, ok := evs[i].Data.(api.RequestSLA); ok {
				m.slaChanges.WithLabelValues(string(s.SLA)).Inc()
			}
		}
	}
	for i, c := range cmds {
		if c.Op == fsm.OpAcceptOffer && i < len(results) && results[i].Err == nil {
			m.offersEnded.WithLabelValues(offerAccepts).Inc()
		}
	}
}

// countingOutbox counts the frames delivered to one session's outbox and
// whether it refused one, and how its stream started (CaughtUp), which it
// passes on to the outbox. It has DeliverBatch when the outbox has it, so
// the actors still hand it frames in batches.
type countingOutbox struct {
	transport.Outbox
	m *Metrics
	// resume says the attach came with a cursor: a sync then means the
	// history could not serve it.
	resume bool
}

var _ actors.CaughtUpOutbox = countingOutbox{}

// CaughtUp implements actors.CaughtUpOutbox.
func (o countingOutbox) CaughtUp(mode string, seq uint64) {
	switch {
	case mode != api.CaughtUpSync:
		o.m.resumes.Inc()
	case o.resume:
		o.m.syncs.WithLabelValues(syncNotHeld).Inc()
	default:
		o.m.syncs.WithLabelValues(syncNew).Inc()
	}
	if cu, ok := o.Outbox.(actors.CaughtUpOutbox); ok {
		cu.CaughtUp(mode, seq)
	}
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

// wrapAttach attaches out counted (resume: the attach had a cursor), and
// returns the detach wrapper that keeps the stream gauge of role right.
func (m *Metrics) wrapAttach(role string, resume bool, out transport.Outbox, attach func(transport.Outbox) func()) func() {
	if m == nil {
		return attach(out)
	}
	co := countingOutbox{Outbox: out, m: m, resume: resume}
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
