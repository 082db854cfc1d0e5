package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"path"
)

// web holds the pages: two templates (login.html, index.html) and the
// static files they load (console.css, console.js).
//
//go:embed web
var web embed.FS

// contentSecurityPolicy lets the pages load only the console's own files:
// no inline script or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// staticType is the content type of a static file, "" for a name that is
// not one.
func staticType(name string) string {
	switch name {
	case "console.css":
		return "text/css; charset=utf-8"
	case "console.js":
		return "text/javascript; charset=utf-8"
	}
	return ""
}

func parsePages() (*template.Template, error) {
	t, err := template.ParseFS(web, "web/login.html", "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("console: parse pages: %w", err)
	}
	return t, nil
}

// indexData fills index.html.
type indexData struct {
	Supervisor string
	Node       string
	CSRF       string
	ServerTime int64 // unix milliseconds when the page was made
}

// loginData fills login.html.
type loginData struct {
	ID    string
	Error string
}

// index serves the console's page to a logged-in supervisor, and sends
// anyone else to the login page.
func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	s, err := h.session(r)
	if err != nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	h.render(w, http.StatusOK, "index.html", indexData{
		Supervisor: s.id, Node: h.cfg.Node, CSRF: h.keys.csrfToken(s), ServerTime: h.now().UnixMilli(),
	})
}

func (h *Handler) renderLogin(w http.ResponseWriter, status int, id, msg string) {
	h.render(w, status, "login.html", loginData{ID: id, Error: msg})
}

// render executes a page into a buffer first, so that a failure is a
// clean 500.
func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := h.pages.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "the page could not be made", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// static serves console.css and console.js.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	typ := staticType(name)
	if typ == "" {
		http.NotFound(w, r)
		return
	}
	b, err := web.ReadFile(path.Join("web", name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", typ)
	_, _ = w.Write(b)
}
