package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
)

// The Redis tuning keys: their defaults, and bounds that keep requests
// from waiting on Redis and generation keys from outliving their use.
func TestRedisTuning(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	cfg, err := config.Parse("gateway.yaml", []byte("redis: redis://cache:6379/0\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisTimeout != 250*time.Millisecond || cfg.RedisGenerationTTL != 24*time.Hour {
		t.Errorf("defaults: redis_timeout %v, redis_generation_ttl %v; want 250ms, 24h", cfg.RedisTimeout, cfg.RedisGenerationTTL)
	}
	cfg, err = config.Parse("gateway.yaml", []byte("redis_timeout: 100ms\nredis_generation_ttl: 1h\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisTimeout != 100*time.Millisecond || cfg.RedisGenerationTTL != time.Hour {
		t.Errorf("set: redis_timeout %v, redis_generation_ttl %v; want 100ms, 1h", cfg.RedisTimeout, cfg.RedisGenerationTTL)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"timeout too long", "redis_timeout: 10s\n", "gateway.yaml:1: redis_timeout: must be at most 5s, got 10s"},
		{"timeout zero", "redis_timeout: 0s\n", "gateway.yaml:1: redis_timeout:"},
		{"ttl too short", "redis_generation_ttl: 1m\n", "gateway.yaml:1: redis_generation_ttl: must be at least 10m0s, got 1m0s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("gateway.yaml", []byte(tt.yaml), env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}
