package bench

import (
	"log/slog"
	"strings"
	"testing"
)

func TestParseFanoutCommand(t *testing.T) {
	c := fanoutCommand{resource: "ledger", prefix: "r2", rate: 12.5, count: 100, topics: 3}
	got, err := parseFanoutCommand(strings.TrimSpace(c.String()))
	if err != nil || got != c {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, c)
	}
	if c.topic(2) != "ledger/r2-3" {
		t.Errorf("topic(2) = %q", c.topic(2))
	}
	for _, bad := range []string{"", "publish", "publish items r1 0 10 1", "publish items r1 5 -1 1", "publish items r1 5 10 x", "push items r1 5 10 1"} {
		if _, err := parseFanoutCommand(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The warn systems' gateways log at warn whatever the run's level; the
// others at the run's.
func TestGatewayLogLevelOfASystem(t *testing.T) {
	o := Options{GatewayLogLevel: slog.LevelDebug}
	for _, tt := range []struct {
		system string
		want   slog.Level
	}{
		{SystemStreamgate, slog.LevelDebug},
		{SystemStreamgateCache, slog.LevelDebug},
		{SystemStreamgateNATS, slog.LevelDebug},
		{SystemStreamgateWarn, slog.LevelWarn},
		{SystemStreamgateCacheWarn, slog.LevelWarn},
	} {
		if got := o.gatewayLogLevel(tt.system); got != tt.want {
			t.Errorf("%s logs at %v, want %v", tt.system, got, tt.want)
		}
	}
}
