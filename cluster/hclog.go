package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// levelTrace is the slog level hclog's TRACE maps to (below Debug).
const levelTrace = slog.LevelDebug - 4

// hclogAdapter implements hclog.Logger over a *slog.Logger so Raft's logs
// go wherever the node's do. The slog handler decides which levels are
// enabled; SetLevel is a no-op.
type hclogAdapter struct {
	base    *slog.Logger // includes the implied args
	name    string
	implied []any
	noise   *noiseLimiter // shared by every logger derived from this one
}

// newHCLogger returns an hclog.Logger writing to l under name, with Raft's
// routine noise about unreachable peers lowered and rate-limited
// (hclog_noise.go).
func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{base: l, name: name, noise: newNoiseLimiter(noiseInterval, time.Now)}
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return levelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default: // NoLevel, Info
		return slog.LevelInfo
	}
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	level, keep, suppressed := h.noise.filter(level, msg, args)
	if !keep {
		return
	}
	sl := slogLevel(level)
	ctx := context.Background()
	if !h.base.Enabled(ctx, sl) {
		return
	}
	if h.name != "" {
		args = append([]any{"logger", h.name}, args...)
	}
	args = renderFormats(args)
	if suppressed > 0 {
		args = append(args[:len(args):len(args)], noiseAttr(suppressed))
	}
	h.base.Log(ctx, sl, msg, args...)
}

// renderFormats expands hclog.Fmt values (raft logs e.g. its servers with
// hclog.Fmt("%+v", servers)), which slog would otherwise print as the raw
// format string and arguments.
func renderFormats(args []any) []any {
	out := args
	for i, a := range args {
		f, ok := a.(hclog.Format)
		if !ok || len(f) == 0 {
			continue
		}
		format, ok := f[0].(string)
		if !ok {
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...) // never write into the caller's slice
		}
		out[i] = fmt.Sprintf(format, f[1:]...)
	}
	return out
}

func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogAdapter) enabled(l hclog.Level) bool {
	return h.base.Enabled(context.Background(), slogLevel(l))
}

func (h *hclogAdapter) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hclogAdapter) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hclogAdapter) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hclogAdapter) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hclogAdapter) IsError() bool { return h.enabled(hclog.Error) }

func (h *hclogAdapter) ImpliedArgs() []any { return h.implied }

func (h *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{
		base:    h.base.With(args...),
		name:    h.name,
		implied: append(append([]any(nil), h.implied...), args...),
		noise:   h.noise,
	}
}

func (h *hclogAdapter) Name() string { return h.name }

func (h *hclogAdapter) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{base: h.base, name: name, implied: h.implied, noise: h.noise}
}

func (h *hclogAdapter) SetLevel(hclog.Level) {}

func (h *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (h *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{h: h, level: hclog.Info}
	if opts != nil {
		w.infer = opts.InferLevels
		if opts.ForceLevel != hclog.NoLevel {
			w.level, w.infer = opts.ForceLevel, false
		}
	}
	return w
}

// stdWriter logs each line written by a standard library logger.
type stdWriter struct {
	h     *hclogAdapter
	level hclog.Level
	infer bool
}

// inferLevel strips a level prefix such as "[WARN]" from msg, as hclog
// does, and returns the rest with the level it names.
func inferLevel(msg string) (string, hclog.Level, bool) {
	for _, lp := range [...]struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(msg, lp.prefix); ok {
			return strings.TrimSpace(rest), lp.level, true
		}
	}
	return msg, hclog.NoLevel, false
}

func (w *stdWriter) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		msg := strings.TrimRight(string(line), "\r\n")
		level := w.level
		if w.infer {
			if rest, l, ok := inferLevel(msg); ok {
				msg, level = rest, l
			}
		}
		if msg != "" {
			w.h.Log(level, msg)
		}
	}
	return len(p), nil
}
