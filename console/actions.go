package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
	"github.com/vmihailenco/msgpack/v5"
)

// The actions (POST /console/api/{op}, a JSON body with the op's fields as
// docs/PROTOCOL.md names them) are the supervisor's ordinary write ops.
// The page sends X-Client-ID (its idempotency session, one per page load)
// and X-Seq (one per action, the same when it retries one); without them
// the write is not deduplicated (seq 0) and is applied once per POST.
//
// The answer is 200 {"ok": true, "index": N, "data": result} or an error
// status with {"code": "<api error code name>", "message": "..."}.

// Action request headers.
const (
	clientIDHeader = "X-Client-ID"
	seqHeader      = "X-Seq"
	maxClientID    = 64
)

// action is one supervisor op the console offers: its wire op and how its
// JSON body becomes the op's arguments.
type action struct {
	op   string
	args func(body []byte) (any, error)
}

// actionTable returns the console's POST /console/api/{name} routes;
// assign and requeue are the names the pages use for transfer and
// transfer_to_queue, not_ready for set_agent_state.
func actionTable() map[string]action {
	return map[string]action{
		"close":             {api.OpClose, decodeArgs[api.RequestArgs]("request")},
		"transfer":          {api.OpTransfer, decodeArgs[api.TransferArgs]("request", "to_agent")},
		"assign":            {api.OpTransfer, decodeArgs[api.TransferArgs]("request", "to_agent")},
		"transfer_to_queue": {api.OpTransferToQueue, decodeArgs[api.TransferToQueueArgs]("request", "queue")},
		"requeue":           {api.OpTransferToQueue, decodeArgs[api.TransferToQueueArgs]("request", "queue")},
		"set_agent_state":   {api.OpSetAgentState, notReadyArgs},
		"not_ready":         {api.OpSetAgentState, notReadyArgs},
		"logout":            {api.OpLogout, decodeArgs[api.AgentArgs]("agent")},
	}
}

// decodeArgs returns a decoder of a JSON body into A, by the msgpack
// field names (the wire's), that requires the named fields. Unknown
// fields are refused.
func decodeArgs[A any](required ...string) func([]byte) (any, error) {
	return func(body []byte) (any, error) {
		fields, err := jsonFields(body)
		if err != nil {
			return nil, err
		}
		for _, f := range required {
			if s, _ := fields[f].(string); s == "" {
				return nil, fmt.Errorf("%q is required", f)
			}
		}
		// JSON → msgpack → A: the api types carry msgpack tags only.
		raw, err := msgpack.Marshal(fields)
		if err != nil {
			return nil, err
		}
		var a A
		dec := msgpack.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields(true)
		if err := dec.Decode(&a); err != nil {
			return nil, fmt.Errorf("arguments: %w", err)
		}
		return &a, nil
	}
}

// notReadyArgs: a supervisor sets agents NOT_READY only (the state
// machine refuses READY); the body names agent, mrd and an optional
// reason.
func notReadyArgs(body []byte) (any, error) {
	a, err := decodeArgs[api.SetAgentStateArgs]("agent", "mrd")(body)
	if err != nil {
		return nil, err
	}
	args := a.(*api.SetAgentStateArgs)
	if args.State == "" {
		args.State = api.AgentNotReady
	}
	return args, nil
}

// jsonFields decodes a JSON object whose values are strings, numbers or
// booleans.
func jsonFields(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("the body must be a JSON object")
	}
	for k, v := range m {
		switch x := v.(type) {
		case string, bool:
		case json.Number:
			n, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("%q: want an integer", k)
			}
			m[k] = n
		default:
			return nil, fmt.Errorf("%q: want a string, a number or a boolean", k)
		}
	}
	return m, nil
}

// action serves POST /console/api/{op}.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	s, ok := h.apiSession(w, r)
	if !ok || !h.checkWrite(w, r, s) {
		return
	}
	act, known := h.acts[r.PathValue("op")]
	if !known {
		writeError(w, http.StatusNotFound, api.CodeUnknownOp.String(), fmt.Sprintf("no console action %q", r.PathValue("op")))
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, api.CodeBadRequest.String(), "send the arguments as application/json")
		return
	}
	if ok, wait := h.actions.take(s.id); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, api.CodeRateLimited.String(), "too many actions: slow down")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, api.CodeBadRequest.String(), "the body is too large")
		return
	}
	args, err := act.args(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest.String(), err.Error())
		return
	}
	clientID, seq, err := idempotency(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest.String(), err.Error())
		return
	}
	raw, err := msgpack.Marshal(args)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal.String(), err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultActionTimeout)
	defer cancel()
	data, index, err := h.cfg.Backend.Commit(ctx, transport.Write{
		By: s.principal(), TokenHash: s.hash[:], ClientID: clientID, Seq: seq, Op: act.op, Args: raw,
	})
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	out, err := toJSON(data)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal.String(), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "index": index, "data": json.RawMessage(out)})
}

// idempotency returns the write's client id and seq: the page's headers,
// or none (seq 0: the write is not deduplicated). A fresh client id per
// header-less write would hold one of the supervisor's idempotency
// sessions each, evicting the pages' own (fsm: a principal keeps at most
// api.MaxClientIDsPerPrincipal).
func idempotency(r *http.Request) (string, uint64, error) {
	id, seqText := r.Header.Get(clientIDHeader), r.Header.Get(seqHeader)
	if id == "" && seqText == "" {
		return "", 0, nil
	}
	if len(id) == 0 || len(id) > maxClientID || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return "", 0, fmt.Errorf("%s: want 1 to %d letters, digits, - or _", clientIDHeader, maxClientID)
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if err != nil || seq == 0 {
		return "", 0, fmt.Errorf("%s: want a positive integer with %s", seqHeader, clientIDHeader)
	}
	return id, seq, nil
}

// board serves GET /console/api/board: the supervisor's Board now.
func (h *Handler) board(w http.ResponseWriter, r *http.Request) {
	s, ok := h.apiSession(w, r)
	if !ok {
		return
	}
	h.query(w, r, s, api.QueryBoard, nil)
}

// request serves GET /console/api/request/{id}: the request with its
// transcript (api.ConversationView).
func (h *Handler) request(w http.ResponseWriter, r *http.Request) {
	s, ok := h.apiSession(w, r)
	if !ok {
		return
	}
	h.query(w, r, s, api.QueryRequest, api.QueryArgs{Request: r.PathValue("id")})
}

// query answers a read of the supervisor's, as JSON.
func (h *Handler) query(w http.ResponseWriter, r *http.Request, s session, op string, args any) {
	if ok, wait := h.reads.take(s.id); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, api.CodeRateLimited.String(), "too many reads: slow down")
		return
	}
	var raw msgpack.RawMessage
	if args != nil {
		var err error
		if raw, err = msgpack.Marshal(args); err != nil {
			writeError(w, http.StatusInternalServerError, api.CodeInternal.String(), err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), DefaultActionTimeout)
	defer cancel()
	data, err := h.cfg.Backend.Query(ctx, s.principal(), op, raw)
	if err != nil {
		h.writeAPIError(w, err)
		return
	}
	out, err := toJSON(data)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal.String(), err.Error())
		return
	}
	writeRawJSON(w, http.StatusOK, out)
}

// writeAPIError answers an error of the backend with the HTTP status of
// its code.
func (h *Handler) writeAPIError(w http.ResponseWriter, err error) {
	code := api.CodeOf(err)
	var eb *transport.ErrorBody
	if errors.As(err, &eb) {
		code = eb.Code
	}
	status := httpStatus(code)
	if status >= 500 {
		h.log.Warn("console: a supervisor's request failed", "code", code.String(), "err", err)
	}
	if code == api.CodeRateLimited || code == api.CodeNoLeader || code == api.CodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status, code.String(), err.Error())
}

// httpStatus maps an api error code to an HTTP status.
func httpStatus(c api.Code) int {
	switch c {
	case api.CodeOK:
		return http.StatusOK
	case api.CodeBadRequest:
		return http.StatusBadRequest
	case api.CodeUnauthenticated:
		return http.StatusUnauthorized
	case api.CodeForbidden:
		return http.StatusForbidden
	case api.CodeNotFound, api.CodeUnknownOp:
		return http.StatusNotFound
	case api.CodeAlreadyExists, api.CodeWrongState, api.CodeNotParticipant, api.CodeNotSubscribed,
		api.CodeAlreadyParticipant, api.CodeStaleSequence, api.CodeOverCapacity, api.CodeClosed,
		api.CodeFeatureNotEnabled:
		return http.StatusConflict
	case api.CodeRateLimited:
		return http.StatusTooManyRequests
	case api.CodeNotLeader, api.CodeNoLeader, api.CodeUnavailable:
		return http.StatusServiceUnavailable
	case api.CodeTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeError answers {"code", "message"}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"encode the answer"}`)
	}
	writeRawJSON(w, status, b)
}

func writeRawJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
