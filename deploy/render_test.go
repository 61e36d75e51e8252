package deploy_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/streamgate/streamgate/gateway/config"
)

// services are the stack's services; each must be a Deployment and a
// headless Service.
var services = []string{"users", "inventory", "orders", "payments"}

// object is one rendered object, as a map.
type object map[string]any

// at follows a path of keys and list indexes ("0") through the object;
// nil when something on the way is missing.
func (o object) at(path ...string) any {
	var v any = map[string]any(o)
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (o object) str(path ...string) string { s, _ := o.at(path...).(string); return s }

// render builds dir (deploy/kustomize, or an overlay) as `kustomize
// build` does and returns its objects by kind and name (generated names
// without their hash).
func render(t *testing.T, dir string) map[string]object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out := map[string]object{}
	for _, r := range m.Resources() {
		mp, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		name := r.GetName()
		if r.GetKind() == "ConfigMap" {
			name = name[:strings.LastIndex(name, "-")] // the content's hash
		}
		out[r.GetKind()+"/"+name] = mp
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := render(t, "kustomize")
	want := []string{"Deployment/gateway", "Service/gateway", "HorizontalPodAutoscaler/gateway", "ConfigMap/streamgate-gateway", "ConfigMap/streamgate-env"}
	for _, s := range services {
		want = append(want, "Deployment/"+s, "Service/"+s)
	}
	for _, k := range want {
		if objs[k] == nil {
			t.Errorf("no %s rendered", k)
		}
	}
	if len(objs) != len(want) {
		t.Errorf("rendered %d objects, want %d", len(objs), len(want))
	}

	t.Run("gateway", func(t *testing.T) {
		d := objs["Deployment/gateway"]
		c := object(d.at("spec", "template", "spec", "containers", "0").(map[string]any))
		if got := c.str("readinessProbe", "httpGet", "path"); got != "/readyz" {
			t.Errorf("readiness probe %q, want /readyz", got)
		}
		if got := c.str("livenessProbe", "httpGet", "path"); got != "/healthz" {
			t.Errorf("liveness probe %q, want /healthz", got)
		}
		if c.str("readinessProbe", "httpGet", "port") != "admin" || !hasArg(c, "-admin=0.0.0.0:8081") {
			t.Error("the probes are not on the admin listener")
		}
		drain := argDuration(t, c, "-shutdown-timeout")
		if got := grace(d); got != drain+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %v, want the drain (%v) plus 5s", got, drain)
		}
		if d.at("spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
			t.Error("the gateway may run as root")
		}
		hpa := objs["HorizontalPodAutoscaler/gateway"]
		if hpa.str("spec", "scaleTargetRef", "kind") != "Deployment" || hpa.str("spec", "scaleTargetRef", "name") != "gateway" {
			t.Errorf("HPA scales %v", hpa.at("spec", "scaleTargetRef"))
		}
		// The volume names the generated ConfigMap, hash and all.
		cm := d.str("spec", "template", "spec", "volumes", "0", "configMap", "name")
		if !strings.HasPrefix(cm, "streamgate-gateway-") {
			t.Errorf("config volume from %q", cm)
		}
		if objs["Service/gateway"].at("spec", "clusterIP") != nil {
			t.Error("the gateway's Service is headless; it balances clients")
		}
	})

	t.Run("services", func(t *testing.T) {
		for _, s := range services {
			d, svc := objs["Deployment/"+s], objs["Service/"+s]
			if svc.str("spec", "clusterIP") != "None" {
				t.Errorf("Service %s is not headless", s)
			}
			if svc.str("spec", "selector", "app.kubernetes.io/name") != d.str("spec", "template", "metadata", "labels", "app.kubernetes.io/name") {
				t.Errorf("Service %s does not select its pods", s)
			}
			if svc.at("spec", "ports", "0", "port") != 9000 {
				t.Errorf("Service %s port %v, want 9000", s, svc.at("spec", "ports", "0", "port"))
			}
			c := object(d.at("spec", "template", "spec", "containers", "0").(map[string]any))
			if c.at("readinessProbe", "grpc", "port") != 9000 || c.at("livenessProbe", "grpc", "port") != 9000 {
				t.Errorf("%s: probes %v %v, want gRPC health on 9000", s, c.at("readinessProbe"), c.at("livenessProbe"))
			}
			// The socket's drain timeout (10s) plus 5s.
			if got := grace(d); got != 15*time.Second {
				t.Errorf("%s: terminationGracePeriodSeconds %v, want 15s", s, got)
			}
			if !hasArg(c, s) || !hasArg(c, "-store=postgres") {
				t.Errorf("%s: args %v", s, c.at("args"))
			}
			if ref := envRef(c, "STREAMGATE_DSN"); ref != "secret streamgate-postgres/"+s {
				t.Errorf("%s: STREAMGATE_DSN from %q", s, ref)
			}
			if ref := envRef(c, "STREAMGATE_SERVICE_KEY"); ref != "secret streamgate/service-key" {
				t.Errorf("%s: STREAMGATE_SERVICE_KEY from %q", s, ref)
			}
		}
		if c := object(objs["Deployment/payments"].at("spec", "template", "spec", "containers", "0").(map[string]any)); !strings.HasPrefix(envRef(c, "PAYMENT_GATEWAYS"), "configmap streamgate-env-") {
			t.Errorf("payments: PAYMENT_GATEWAYS from %q", envRef(c, "PAYMENT_GATEWAYS"))
		}
	})

	t.Run("routes", func(t *testing.T) {
		cfg := routes(t, objs)
		for _, s := range services {
			if got, want := cfg.Services[s].Target, "dns:///"+s+":9000"; got != want {
				t.Errorf("service %s: target %q, want %q (its headless Service)", s, got, want)
			}
		}
	})
}

// routes loads the gateway's configuration from the rendered ConfigMap and
// checks what every layout needs: Redis shared, the stack's routes.
func routes(t *testing.T, objs map[string]object) *config.Config {
	t.Helper()
	data := objs["ConfigMap/streamgate-gateway"].str("data", "gateway.yaml")
	env := func(k string) string {
		if k == "STREAMGATE_REDIS_URL" {
			return "redis://redis:6379/0"
		}
		return "value of " + k
	}
	cfg, err := config.Parse("gateway.yaml", []byte(data), env)
	if err != nil {
		t.Fatalf("the ConfigMap's routes do not load:\n%v", err)
	}
	if cfg.Redis == "" {
		t.Error("no Redis: gateways would not share state")
	}
	// The routes are the stack's: the versions section is the same text.
	stack, err := os.ReadFile("../gateway/stack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if versions(data) != versions(string(stack)) {
		t.Error("the versions section differs from gateway/stack.yaml's: copy it over")
	}
	for _, v := range []string{"v1", "v2", "v3"} {
		if cfg.Versions[v] == nil {
			t.Errorf("no version %s", v)
		}
	}
	return cfg
}

// TestNATSOverlay renders deploy/overlays/nats: the base's objects, every
// service serving over NATS too and the gateways calling it there, on one
// NATS URL, with several gateway replicas.
func TestNATSOverlay(t *testing.T) {
	base, objs := render(t, "kustomize"), render(t, "overlays/nats")
	if len(objs) != len(base) {
		t.Errorf("the overlay renders %d objects, the base %d", len(objs), len(base))
	}
	for k := range base {
		if objs[k] == nil {
			t.Errorf("the overlay lost %s", k)
		}
	}
	cfg := routes(t, objs)
	natsURL := ""
	for _, s := range services {
		svc := cfg.Services[s]
		if svc.Transport != config.TransportNATS || svc.NATSURL == "" {
			t.Errorf("service %s: transport %q at %q, want nats", s, svc.Transport, svc.NATSURL)
			continue
		}
		if natsURL == "" {
			natsURL = svc.NATSURL
		} else if svc.NATSURL != natsURL {
			t.Errorf("service %s on NATS at %q, the others at %q", s, svc.NATSURL, natsURL)
		}
		c := object(objs["Deployment/"+s].at("spec", "template", "spec", "containers", "0").(map[string]any))
		if !hasArg(c, "-nats="+natsURL) || !hasArg(c, "-listen=0.0.0.0:9000") {
			t.Errorf("%s: args %v, want -nats=%s beside its stream (the probes' gRPC health)", s, c.at("args"), natsURL)
		}
	}
	if cfg.Events == nil || cfg.Events.NATSURL != natsURL || len(cfg.Events.Windows) == 0 || cfg.Events.Replicas != 3 {
		t.Errorf("events %+v, want them read from JetStream at %s (a window per resource)", cfg.Events, natsURL)
	}
	if n, _ := objs["Deployment/gateway"].at("spec", "replicas").(int); n < 3 {
		t.Errorf("gateway replicas %d, want several (3)", n)
	}
	if n, _ := objs["HorizontalPodAutoscaler/gateway"].at("spec", "minReplicas").(int); n < 3 {
		t.Errorf("gateway HPA minReplicas %d, want 3", n)
	}
}

// versions is a configuration's text from its versions section on.
func versions(yaml string) string {
	i := strings.Index(yaml, "\nversions:")
	if i < 0 {
		return ""
	}
	return yaml[i:]
}

func hasArg(c object, arg string) bool {
	args, _ := c.at("args").([]any)
	return slices.Contains(args, any(arg))
}

// argDuration is the duration of a -name=D argument.
func argDuration(t *testing.T, c object, name string) time.Duration {
	t.Helper()
	args, _ := c.at("args").([]any)
	for _, a := range args {
		if s, _ := a.(string); strings.HasPrefix(s, name+"=") {
			d, err := time.ParseDuration(strings.TrimPrefix(s, name+"="))
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("no %s argument in %v", name, args)
	return 0
}

func grace(d object) time.Duration {
	n, _ := d.at("spec", "template", "spec", "terminationGracePeriodSeconds").(int)
	return time.Duration(n) * time.Second
}

// envRef says where an env var comes from: "secret NAME/KEY" or
// "configmap NAME/KEY".
func envRef(c object, name string) string {
	env, _ := c.at("env").([]any)
	for _, e := range env {
		e := object(e.(map[string]any))
		if e.str("name") != name {
			continue
		}
		if s := e.str("valueFrom", "secretKeyRef", "name"); s != "" {
			return "secret " + s + "/" + e.str("valueFrom", "secretKeyRef", "key")
		}
		if s := e.str("valueFrom", "configMapKeyRef", "name"); s != "" {
			return "configmap " + s + "/" + e.str("valueFrom", "configMapKeyRef", "key")
		}
	}
	return ""
}
