package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
)

// The session cookie. Its value is
//
//	v1.<base64url(supervisor id)>.<expiry, unix seconds>.<base64url(SHA-256 of the token)>.<base64url(MAC)>
//
// where MAC = HMAC-SHA256(session key, everything before it). The token
// hash is what the state stores for the supervisor, not a credential: it
// is there so that every request can check the state still holds it.
const (
	cookieName    = "switchboard_console"
	cookiePath    = "/console/"
	cookieVersion = "v1"
	// csrfHeader carries the page's CSRF token on state-changing requests.
	csrfHeader = "X-CSRF-Token"
)

// Errors of a session cookie; each logs the browser out.
var (
	errNoSession  = errors.New("not logged in")
	errBadSession = errors.New("session cookie is malformed or its MAC is wrong")
	errExpired    = errors.New("session expired")
	errRevoked    = errors.New("the supervisor was deleted or its token replaced")
)

// keys are the console's MAC keys, derived from the cluster secret so that
// every node of the cluster has the same.
type keys struct {
	session []byte
	csrf    []byte
}

func deriveKeys(secret []byte) keys {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("switchboard/console/" + label))
		return m.Sum(nil)
	}
	return keys{session: derive("session/v1"), csrf: derive("csrf/v1")}
}

func mac(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// session is a verified session cookie.
type session struct {
	id      string
	hash    [sha256.Size]byte
	expires time.Time
	raw     string // the cookie's value
}

func (s session) principal() api.Principal {
	return api.Principal{Role: api.RoleSupervisor, ID: s.id}
}

// mint returns the cookie value of a session.
func (k keys) mint(id string, hash [sha256.Size]byte, expires time.Time) string {
	payload := cookieVersion + "." + b64.EncodeToString([]byte(id)) + "." +
		strconv.FormatInt(expires.Unix(), 10) + "." + b64.EncodeToString(hash[:])
	return payload + "." + b64.EncodeToString(mac(k.session, payload))
}

// parse verifies a cookie value: its MAC, then its expiry.
func (k keys) parse(v string, now time.Time) (session, error) {
	parts := strings.Split(v, ".")
	if len(v) > 512 || len(parts) != 5 || parts[0] != cookieVersion {
		return session{}, errBadSession
	}
	sum, err := b64.DecodeString(parts[4])
	if err != nil || !hmac.Equal(sum, mac(k.session, strings.Join(parts[:4], "."))) {
		return session{}, errBadSession
	}
	id, err1 := b64.DecodeString(parts[1])
	exp, err2 := strconv.ParseInt(parts[2], 10, 64)
	hash, err3 := b64.DecodeString(parts[3])
	if err1 != nil || err2 != nil || err3 != nil || len(id) == 0 || len(id) > api.MaxIDBytes || len(hash) != sha256.Size {
		return session{}, errBadSession
	}
	s := session{id: string(id), expires: time.Unix(exp, 0), raw: v}
	copy(s.hash[:], hash)
	if !now.Before(s.expires) {
		return session{}, errExpired
	}
	return s, nil
}

// csrfToken is the CSRF token of a session: a MAC of its cookie.
func (k keys) csrfToken(s session) string { return b64.EncodeToString(mac(k.csrf, s.raw)) }

// session returns the request's session, verified against the state: the
// supervisor still exists with the token it logged in with.
func (h *Handler) session(r *http.Request) (session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return session{}, errNoSession
	}
	s, err := h.keys.parse(c.Value, h.now())
	if err != nil {
		return session{}, err
	}
	if !h.cfg.Backend.CredentialValid(s.principal(), s.hash[:]) {
		return session{}, errRevoked
	}
	return s, nil
}

// apiSession is session for the JSON API: it answers 401 itself.
func (h *Handler) apiSession(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, err := h.session(r)
	if err != nil {
		if !errors.Is(err, errNoSession) {
			h.clearCookie(w, r)
		}
		writeError(w, http.StatusUnauthorized, api.CodeUnauthenticated.String(), err.Error()+": log in again")
		return session{}, false
	}
	return s, true
}

// checkWrite guards a state-changing request: same origin (Sec-Fetch-Site,
// Origin) and the session's CSRF token in the X-CSRF-Token header. It
// answers 403 itself.
func (h *Handler) checkWrite(w http.ResponseWriter, r *http.Request, s session) bool {
	if err := h.origin.Check(r); err != nil {
		writeError(w, http.StatusForbidden, api.CodeForbidden.String(), "cross-origin request refused: "+err.Error())
		return false
	}
	got := r.Header.Get(csrfHeader)
	want := h.keys.csrfToken(s)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		writeError(w, http.StatusForbidden, api.CodeForbidden.String(), "missing or wrong "+csrfHeader+" header: reload the page")
		return false
	}
	return true
}

// secure reports whether the browser reached us over TLS, directly or
// through a proxy that says so: the cookie is then Secure.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: cookiePath, Expires: expires,
		MaxAge: int(expires.Sub(h.now()).Seconds()), HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

// loginPage shows the login form, or the console to a browser already
// logged in.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := h.session(r); err == nil {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	h.renderLogin(w, http.StatusOK, "", "")
}

// login checks a supervisor's id and token, posted in the form body (never
// the URL: the query string is not read), and sets the session cookie.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.origin.Check(r); err != nil {
		h.renderLogin(w, http.StatusForbidden, "", "This login did not come from the console's own page.")
		return
	}
	addr := sourceAddr(r)
	if blocked, wait := h.logins.blocked(addr); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
		h.renderLogin(w, http.StatusTooManyRequests, "", fmt.Sprintf("Too many failed logins from your address: try again in %d s.", int(wait/time.Second)+1))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if err := r.ParseForm(); err != nil {
		h.renderLogin(w, http.StatusBadRequest, "", "The login form could not be read.")
		return
	}
	id, token := strings.TrimSpace(r.PostForm.Get("id")), strings.TrimSpace(r.PostForm.Get("token"))
	p, err := h.cfg.Backend.Authenticate(api.RoleSupervisor, id, token)
	if err != nil || id == "" || token == "" {
		h.logins.take(addr)
		h.failLog.Log(h.log, slog.LevelWarn, "console login failed", "supervisor", id, "addr", addr)
		h.renderLogin(w, http.StatusUnauthorized, id, "Unknown supervisor or wrong token.")
		return
	}
	expires := h.now().Add(h.cfg.SessionTTL)
	h.setCookie(w, r, h.keys.mint(p.ID, sha256.Sum256([]byte(token)), expires), expires)
	h.log.Info("console login", "supervisor", p.ID, "addr", addr)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// logout clears the session cookie. With a session, it needs the CSRF
// token like any other change.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if s, err := h.session(r); err == nil && !h.checkWrite(w, r, s) {
		return
	}
	h.clearCookie(w, r)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true})
}

// sourceAddr is the IP the request came from (the proxy's, behind one).
func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
