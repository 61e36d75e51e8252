package stack

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"go.yaml.in/yaml/v4"

	"github.com/streamgate/streamgate/gateway/config"
)

// shared is what the stack's gateways share beyond the services: the
// NATS server the services are reached on ("" for their streams) and the
// Redis of cache generations and Idempotency-Key state ("" for none).
type shared struct {
	natsURL, redisURL string
}

// gatewayConfig returns the gateway configuration the stack runs: o's, as
// written when nothing is shared; otherwise with every service on NATS
// (transport: nats, nats_url), the events read from JetStream (events,
// unless the file has its own) and redis set. The configuration is then
// read once, here: the gateways' reload applies it as it was at start.
func gatewayConfig(o Options, sh shared) (path string, data []byte, err error) {
	if sh == (shared{}) {
		return o.ConfigPath, o.ConfigData, nil
	}
	data = o.ConfigData
	if data == nil {
		if data, err = os.ReadFile(o.ConfigPath); err != nil {
			return "", nil, err
		}
	}
	data, err = rewriteConfig(data, sh)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", o.ConfigPath, err)
	}
	return o.ConfigPath, data, nil
}

// rewriteConfig sets what sh shares in the configuration data; its
// comments and layout stay.
func rewriteConfig(data []byte, sh shared) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the configuration is not a YAML mapping")
	}
	top := doc.Content[0]
	if sh.redisURL != "" {
		deleteKey(top, "redis_env")
		setKey(top, "redis", sh.redisURL)
	}
	if sh.natsURL != "" {
		services := value(top, "services")
		if services == nil || services.Kind != yaml.MappingNode {
			return nil, errors.New("no services mapping to put on NATS")
		}
		for i := 1; i < len(services.Content); i += 2 {
			svc := services.Content[i]
			if svc.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("service %s: expected a mapping", services.Content[i-1].Value)
			}
			// On NATS the target is the service's name there (the stack
			// sets it); the stream's TLS does not apply.
			for _, k := range []string{"target", "tls", "plaintext"} {
				deleteKey(svc, k)
			}
			setKey(svc, "transport", config.TransportNATS)
			setKey(svc, "nats_url", sh.natsURL)
		}
		// The gateways read the services' events from JetStream, in the
		// windows they make (one per resource unless the file says
		// otherwise); an events block of the file's own stays as written.
		if value(top, "events") == nil {
			events := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			setKey(events, "nats_url", sh.natsURL)
			top.Content = append(top.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "events"}, events)
		}
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2) // as written, so errors' lines stay near the file's
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// value is the value of key in the mapping m, or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// setKey sets key to the string v in the mapping m, in place when the key
// is there, at the end otherwise.
func setKey(m *yaml.Node, key, v string) {
	if n := value(m, key); n != nil {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
}

// deleteKey removes key from the mapping m.
func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}
