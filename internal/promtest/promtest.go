// Package promtest reads Prometheus metrics in tests: from a registry, or
// scraped over HTTP from a /metrics endpoint in the text format.
//
//	s := promtest.Scrape(t, "http://"+admin+"/metrics")
//	if s.Value("streamgate_gateway_cache_requests_total", "outcome", "hit") != 1 { … }
package promtest

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are metric families by name, as one scrape or gather saw them.
type Families map[string]*dto.MetricFamily

// Scrape gets url (a /metrics endpoint) and parses its text exposition.
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return fams
}

// Gather reads a registry's metrics.
func Gather(t testing.TB, g prometheus.Gatherer) Families {
	t.Helper()
	list, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	fams := Families{}
	for _, f := range list {
		fams[f.GetName()] = f
	}
	return fams
}

// Value sums the series of the family name whose labels include the given
// name, value pairs: counters' and gauges' values, histograms' sample
// counts. It is 0 when no series matches.
func (f Families) Value(name string, labelPairs ...string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !matches(m, labelPairs) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// Has reports whether the family name has a series.
func (f Families) Has(name string) bool {
	return f[name] != nil && len(f[name].GetMetric()) > 0
}

func matches(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
