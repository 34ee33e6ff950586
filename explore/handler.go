package explore

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// PagePath serves the explorer's page; APIPath the same data as JSON.
const (
	PagePath = "/explore"
	APIPath  = "/api/v1/explore"
)

// Coverage returns, for each of the metric names given, the rules that select it with their
// actual series in and out (names no rule selects may be left out).
type Coverage func(metrics []string) map[string][]RuleCoverage

// defaultLimit is how many metrics the page and the API list unless asked for more.
const defaultLimit = 100

// Response is the API's answer, shaped like the Prometheus HTTP API's.
type Response struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Data   *Data  `json:"data,omitempty"`
}

// Data is what the API returns: the last complete scan, if any, and the progress of the one
// running, if any.
type Data struct {
	Enabled  bool    `json:"enabled"`
	Result   *Result `json:"result,omitempty"`
	Progress *Result `json:"progress,omitempty"`
	// ScanEvery and ScanFor are the explorer's settings, for a reader to judge how fresh
	// Result is.
	ScanEvery string `json:"scan_every"`
	ScanFor   string `json:"scan_for"`
}

// Handler serves the page at PagePath and the API at APIPath. A nil Explorer (switched off)
// serves a page and an answer that say so.
type Handler struct {
	e      *Explorer
	cover  Coverage
	logger *slog.Logger
}

// NewHandler returns the handler of e; cover may be nil.
func NewHandler(e *Explorer, cover Coverage, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{e: e, cover: cover, logger: logger}
}

// query is what a request asks for: one metric, or the top limit.
type query struct {
	metric string
	limit  int
}

func parseQuery(r *http.Request) (query, error) {
	q := query{metric: r.URL.Query().Get("metric"), limit: defaultLimit}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return q, fmt.Errorf("limit must be a positive integer, not %q", s)
		}
		q.limit = n
	}
	return q, nil
}

// data answers q.
func (h *Handler) data(q query) *Data {
	d := &Data{Enabled: h.e != nil}
	if h.e == nil {
		return d
	}
	cfg := h.e.Config()
	d.ScanEvery, d.ScanFor = cfg.ScanEvery.String(), cfg.ScanFor.String()
	if r, ok := h.e.Result(); ok {
		r.Metrics = h.pick(r.Metrics, q)
		d.Result = &r
	}
	if p, ok := h.e.Progress(); ok {
		p.Metrics = h.pick(p.Metrics, q)
		d.Progress = &p
	}
	return d
}

// pick returns the metrics q asks for, copied, with the rules that cover them.
func (h *Handler) pick(ms []Metric, q query) []Metric {
	var out []Metric
	for _, m := range ms {
		if q.metric != "" && m.Name != q.metric {
			continue
		}
		if q.metric == "" && len(out) == q.limit {
			break
		}
		out = append(out, m)
	}
	if h.cover != nil && len(out) > 0 {
		names := make([]string, len(out))
		for i := range out {
			names[i] = out[i].Name
		}
		cover := h.cover(names)
		for i := range out {
			out[i].Rules = cover[out[i].Name]
		}
	}
	return out
}

// ServeHTTP serves the page or the API, by path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if r.URL.Path == APIPath {
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(Response{Status: "error", Error: err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(Response{Status: "success", Data: h.data(q)})
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	p := page{Data: h.data(q), Metric: q.metric, Limit: q.limit, API: APIPath}
	if err := pageTemplate.Execute(w, p); err != nil {
		h.logger.Warn("rendering the explore page", "err", err)
	}
}

// page is what the template shows.
type page struct {
	*Data
	Metric string
	Limit  int
	API    string
}

//go:embed explore.html
var pageHTML string

var pageTemplate = template.Must(template.New("explore").Funcs(template.FuncMap{
	"ratio": func(x float64) string {
		if x == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f×", x)
	},
	"rate": func(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) },
	"when": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"took": func(a, b time.Time) string { return b.Sub(a).Round(time.Second).String() },
}).Parse(pageHTML))
