package faults_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/internal/natstest"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/tools/internal/childproc"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

// The fleet: the shop as users run it past one machine. A NATS server
// with JetStream (embedded in the test, restartable on its port and
// store), service instances as `streamgate service NAME -nats URL`
// processes sharing one SQLite store, and gateways as `streamgate
// gateway` processes whose configuration (the stack's) puts every service
// on transport nats, sharing Redis when STREAMGATE_TEST_REDIS is set.

// built is the streamgate binary the fleet runs, built once per test
// process by streamgateBin, in dir.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

// streamgateBin builds the streamgate binary, once, and returns its path.
func streamgateBin() (string, error) {
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "faults-bin-"); built.err != nil {
			return
		}
		bin := filepath.Join(built.dir, "streamgate")
		if out, err := exec.Command("go", "build", "-o", bin, "../..").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./tools/streamgate: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	return built.bin, built.err
}

// removingBin runs the tests, then removes the binary they built.
type removingBin struct{ m *testing.M }

func (r removingBin) Run() int {
	code := r.m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	return code
}

// fleet is the processes of one test's fleet.
type fleet struct {
	t        *testing.T
	bin      string
	nats     *natstest.Server
	nc       *nats.Conn // the test's own connection, to watch the services
	data     string     // the services' shared store
	config   string     // the gateways' configuration file
	services map[string][]*process
	gateways []*gatewayProc
	// sandboxes are the payment providers payments charges, when it
	// runs, and sandboxURLs their base URLs, by name.
	sandboxes   map[string]*payments.Sandbox
	sandboxURLs map[string]string
	// inventoryAddrs are the inventory instances' stream addresses, where
	// orders asks for prices (orders calls inventory over gRPC).
	inventoryAddrs []string
}

// process is one child process of the fleet.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	// log is its stdout and stderr (one writer: exec writes from one
	// goroutine at a time), read once it has exited.
	log *bytes.Buffer
}

// gatewayProc is a gateway process and a REST client of it.
type gatewayProc struct {
	*process
	rest *resttest.Client
}

// fleetOptions shape a fleet.
type fleetOptions struct {
	instances map[string]int // per service; services not named do not run
	gateways  int
	redis     string // the gateways' redis: URL; "" for none
	// redisTimeout, when set, is the gateways' redis_timeout (default
	// 250ms).
	redisTimeout string
	// events has the gateways read the services' events from JetStream
	// (the events block), for WebSocket clients that resume.
	events bool
}

// startFleet starts the NATS server, the services' instances and the
// gateways, and waits until each gateway answers through NATS. It skips
// the test when the binary cannot be built.
func startFleet(t *testing.T, o fleetOptions) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("the fleet builds and runs the streamgate binary")
	}
	bin, err := streamgateBin()
	if err != nil {
		t.Skipf("no streamgate binary to run the fleet: %v", err)
	}
	f := &fleet{t: t, bin: bin, nats: natstest.Restartable(t), data: t.TempDir(), services: map[string][]*process{}}
	f.nc = natstest.Connect(t, f.nats.URL)
	f.writeConfig(o)
	if o.instances["payments"] > 0 {
		f.startSandboxes()
	}
	for _, name := range []string{"users", "inventory", "orders", "payments"} {
		for range o.instances[name] {
			f.startInstance(name)
			// One at a time: the first creates the store's tables.
			natstest.WaitService(t, f.nc, name, len(f.services[name]), 1)
		}
	}
	for range o.gateways {
		f.gateways = append(f.gateways, f.startGateway())
	}
	return f
}

// serviceTarget matches a service's target in the stack's configuration.
var serviceTarget = regexp.MustCompile(`target: "127\.0\.0\.1:910\d"`)

// writeConfig writes the gateways' configuration: the stack's, every
// service on NATS, Redis and the events block as o says.
func (f *fleet) writeConfig(o fleetOptions) {
	stack, err := os.ReadFile(configPath)
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := serviceTarget.ReplaceAll(stack, []byte(`transport: nats, nats_url: "`+f.nats.URL+`"`))
	if bytes.Equal(cfg, stack) {
		f.t.Fatal("the stack's configuration names no service target to move to NATS")
	}
	if o.redis != "" {
		cfg = append(cfg, "\nredis: "+o.redis+"\n"...)
	}
	if o.redisTimeout != "" {
		cfg = append(cfg, "\nredis_timeout: "+o.redisTimeout+"\n"...)
	}
	if o.events {
		cfg = append(cfg, "\nevents:\n  nats_url: \""+f.nats.URL+"\"\n"...)
	}
	f.config = filepath.Join(f.t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(f.config, cfg, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// start runs the binary with args as a child process, stopped (SIGTERM,
// then SIGKILL) at cleanup.
func (f *fleet) start(args ...string) *process {
	f.t.Helper()
	cmd := exec.Command(f.bin, args...)
	cmd.Env = append(os.Environ(), "STREAMGATE_SERVICE_KEY="+serviceKey, "STREAMGATE_ADMIN_KEY="+adminKey, "STREAMGATE_JWT_SECRET="+jwtSecret)
	p := &process{cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	f.t.Cleanup(func() {
		childproc.Stop(cmd.Process, p.exited, 10*time.Second)
		if f.t.Failed() {
			f.t.Logf("%v:\n%s", args, p.log)
		}
	})
	return p
}

// startInstance starts one more instance of a service, serving over NATS
// alone (inventory on a stream as well, for orders).
func (f *fleet) startInstance(name string) *process {
	f.t.Helper()
	args := []string{"service", name, "-nats", f.nats.URL, "-store", "sqlite", "-data", f.data, "-log-level", "warn"}
	switch name {
	case "inventory":
		addr := freeAddr(f.t)
		f.inventoryAddrs = append(f.inventoryAddrs, addr)
		args = append(args, "-listen", addr)
	case "orders":
		args = append(args, "-listen", "", "-inventory", "static:///"+strings.Join(f.inventoryAddrs, ","))
	case "payments":
		var urls []string
		for name, url := range f.sandboxURLs {
			urls = append(urls, name+"="+url)
		}
		args = append(args, "-listen", "", "-gateways", strings.Join(urls, ","), "-provider-timeout", "2s")
	default:
		args = append(args, "-listen", "")
	}
	p := f.start(args...)
	f.services[name] = append(f.services[name], p)
	return p
}

// startSandboxes starts the payment providers A, B and C.
func (f *fleet) startSandboxes() {
	f.t.Helper()
	f.sandboxes, f.sandboxURLs = map[string]*payments.Sandbox{}, map[string]string{}
	for _, name := range []string{"A", "B", "C"} {
		sb := payments.NewSandbox(name, 5*time.Millisecond)
		url, err := sb.Start()
		if err != nil {
			f.t.Fatal(err)
		}
		f.t.Cleanup(sb.Close)
		f.sandboxes[name], f.sandboxURLs[name] = sb, url
	}
}

// startGateway starts a gateway on a free port and waits until its REST
// edge answers.
func (f *fleet) startGateway() *gatewayProc {
	f.t.Helper()
	addr := freeAddr(f.t)
	p := f.start("gateway", "-config", f.config, "-http", addr, "-grpc", "127.0.0.1:0", "-log-level", "warn", "-shutdown-timeout", "2s")
	transport := &http.Transport{MaxIdleConnsPerHost: 64}
	f.t.Cleanup(transport.CloseIdleConnections)
	g := &gatewayProc{process: p, rest: &resttest.Client{Base: "http://" + addr, HTTP: &http.Client{Transport: transport, Timeout: waitLong}}}
	eventually(f.t, "the gateway at "+addr+" answers", func() bool {
		select {
		case <-p.exited:
			f.t.Fatalf("the gateway exited:\n%s", p.log)
		default:
		}
		r, err := g.rest.Do("", "GET", "/v1/items?page_size=1", nil)
		return err == nil && r.Status == http.StatusOK
	})
	return g
}

// kill SIGKILLs the process, as a crash would stop it, and waits until it
// is gone.
func (p *process) kill(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(waitLong):
		t.Fatal("a killed process did not exit")
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// settled is cluster.settled over NATS: a reconciliation run, through
// clients of the fleet's services on NATS, finds nothing to settle, and
// the stock of every item c made is exact.
func (f *fleet) settled(t *testing.T, c *cluster) {
	t.Helper()
	c.settledThrough(t, func(name string) (*caller.Client, error) {
		return caller.Dial(name, caller.WithNATS(f.nc), caller.WithKey(serviceKey))
	})
}
