package bench

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/observe"
	benchv1 "github.com/streamgate/streamgate/gen/streamgate/bench/v1"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/users"
	"github.com/streamgate/streamgate/tools/streamgate/internal/cliflag"
)

// The env vars that carry keys to the servers (never their arguments,
// which any process can read).
const (
	// EnvKey is the API key clients present (X-API-Key).
	EnvKey = "STREAMGATE_BENCH_KEY"
	// EnvServiceKey is the key the streamgate gateway presents to the
	// users service.
	EnvServiceKey = "STREAMGATE_SERVICE_KEY"
)

// The servers Serve runs.
const (
	KindDirect          = "direct"           // the users over HTTP/JSON, API key checked: the baseline
	KindHTTPUsers       = "http-users"       // the same without auth, behind reverse-proxy
	KindReverseProxy    = "reverse-proxy"    // httputil.ReverseProxy checking the key, -backend URL
	KindGRPCUsers       = "grpc-users"       // the unary gRPC users service
	KindGRPCGateway     = "grpc-gateway"     // grpc-gateway checking the key, -backend ADDR
	KindStreamgateUsers = "streamgate-users" // streamgate's users service on a socket, coalescing off
	// KindStreamgateUsersNATS is the same service over NATS request-reply,
	// with a NATS server embedded in its process; its ready line gives
	// the NATS URL.
	KindStreamgateUsersNATS = "streamgate-users-nats"
	KindStreamgateGateway   = "streamgate-gateway" // the streamgate gateway, -config FILE
)

// ServeOptions say which server Serve runs and how.
type ServeOptions struct {
	Kind    string // one of the Kind… constants
	Listen  string // listen address; default 127.0.0.1:0
	Backend string // reverse-proxy: the URL behind; grpc-gateway: the ADDR behind
	Config  string // streamgate-gateway: the gateway's configuration
	Users   int    // how many users; default 1000
	// LogLevel is streamgate-gateway's log level (debug, info, warn or
	// error), its lines written as `streamgate gateway` writes them:
	// text, through an asynchronous writer, to stderr. Default info.
	LogLevel slog.Level
	// CPUProfile, when set, is where fanout writes a CPU profile of
	// itself from its first publish until it stops.
	CPUProfile string
	// Input is where fanout reads its publish commands; default the
	// process's stdin.
	Input io.Reader
}

// Flags declares Serve's flags (all but KIND, which comes before them) on
// fs, filling o.
func (o *ServeOptions) Flags(fs *flag.FlagSet) {
	o.Listen, o.Users = "127.0.0.1:0", 1000
	fs.Func("listen", `listen address (default "127.0.0.1:0")`, func(s string) error {
		if err := cliflag.CheckListen(s); err != nil {
			return err
		}
		o.Listen = s
		return nil
	})
	fs.StringVar(&o.Backend, "backend", "", "the service behind (reverse-proxy: URL; grpc-gateway: ADDR)")
	fs.StringVar(&o.Config, "config", "", "streamgate-gateway: the gateway's configuration")
	fs.IntVar(&o.Users, "users", 1000, "how many users")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "fanout: write a CPU profile from the first publish until the server stops to FILE")
	fs.TextVar(&o.LogLevel, "log-level", slog.LevelInfo, "streamgate-gateway, fanout: the least severe lines logged (debug, info, warn, error; info logs one line per request)")
}

// Serve runs one server: args are KIND [-listen ADDR] [-backend ADDR]
// [-config FILE] [-users N] (see RunServer).
func Serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("bench serve: name the server")
	}
	o := ServeOptions{Kind: args[0]}
	fs := flag.NewFlagSet("bench serve "+o.Kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.Flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return RunServer(ctx, o, stdout, stderr)
}

// RunServer runs the server o names. Once it listens it writes
// "ready ADDR" and a newline to stdout; it serves until ctx ends.
func RunServer(ctx context.Context, o ServeOptions, stdout, stderr io.Writer) error {
	key := os.Getenv(EnvKey)
	ready := func(addr string) { fmt.Fprintf(stdout, "ready %s\n", addr) }
	all := Users(o.Users)
	switch o.Kind {
	case KindDirect:
		return serveHTTP(ctx, o.Listen, withKey(key, usersHandler(all)), ready)
	case KindHTTPUsers:
		return serveHTTP(ctx, o.Listen, usersHandler(all), ready)
	case KindReverseProxy:
		target, err := url.Parse(o.Backend)
		if err != nil || target.Host == "" {
			return fmt.Errorf("reverse-proxy: -backend %q is not a URL", o.Backend)
		}
		rp := &httputil.ReverseProxy{
			Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
			Transport: &http.Transport{MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute},
		}
		return serveHTTP(ctx, o.Listen, withKey(key, rp), ready)
	case KindGRPCUsers:
		return serveGRPCUsers(ctx, o.Listen, all, ready)
	case KindGRPCGateway:
		mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{UseProtoNames: true},
		}))
		if err := benchv1.RegisterUsersServiceHandlerFromEndpoint(ctx, mux, o.Backend,
			[]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}); err != nil {
			return err
		}
		return serveHTTP(ctx, o.Listen, withKey(key, mux), ready)
	case KindStreamgateUsers:
		return serveStreamgateUsers(ctx, o.Listen, all, os.Getenv(EnvServiceKey), ready)
	case KindStreamgateUsersNATS:
		return serveStreamgateUsersNATS(ctx, o.Listen, all, os.Getenv(EnvServiceKey), ready)
	case KindFanout:
		input := o.Input
		if input == nil {
			input = os.Stdin
		}
		return serveFanout(ctx, o, input, stdout, stderr)
	case KindFanoutFloor:
		input := o.Input
		if input == nil {
			input = os.Stdin
		}
		return serveFanoutFloor(ctx, o, input, stdout)
	case KindStreamgateGateway:
		logs := asyncwriter.New(stderr, asyncwriter.DefaultLimit)
		defer func() { _ = logs.Close() }()
		return gateway.Run(ctx, gateway.RunOptions{
			ConfigPath: o.Config, HTTPAddr: o.Listen, GRPCAddr: "127.0.0.1:0",
			Logger: slog.New(observe.NewLogHandler(logs, observe.LogText, o.LogLevel)), // as the gateway command logs
			Ready:  func(a gateway.Addrs) { ready(a.HTTP) },
		})
	}
	return fmt.Errorf("bench serve: unknown server %q", o.Kind)
}

// usersHandler serves GET /v1/users/{id} as plain JSON.
func usersHandler(all []User) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := lookup(all, r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "user not found"})
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
	return mux
}

// withKey answers 401 unless X-API-Key is key.
func withKey(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-API-Key")), []byte(key)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid X-API-Key is required"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// serveHTTP serves h on addr until ctx ends.
func serveHTTP(ctx context.Context, addr string, h http.Handler, ready func(string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	stopped := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stopped()
	ready(lis.Addr().String())
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// grpcUsers is the unary gRPC users service.
type grpcUsers struct {
	benchv1.UnimplementedUsersServiceServer
	all []User
}

func (s *grpcUsers) GetUser(_ context.Context, req *benchv1.GetUserRequest) (*benchv1.GetUserResponse, error) {
	u, ok := lookup(s.all, req.GetId())
	if !ok {
		return nil, status.Error(codes.NotFound, "user not found")
	}
	return &benchv1.GetUserResponse{User: &benchv1.User{Id: u.ID, Name: u.Name, Email: u.Email, Status: u.Status, CreatedAt: u.CreatedAt}}, nil
}

func serveGRPCUsers(ctx context.Context, addr string, all []User, ready func(string)) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	benchv1.RegisterUsersServiceServer(gs, &grpcUsers{all: all})
	stopped := context.AfterFunc(ctx, gs.GracefulStop)
	defer stopped()
	ready(lis.Addr().String())
	return gs.Serve(lis)
}

// serveStreamgateUsers runs streamgate's users service over the same
// users, in memory, with coalescing off, on a socket at addr.
func serveStreamgateUsers(ctx context.Context, addr string, all []User, serviceKey string, ready func(string)) error {
	srv, err := streamgateUsers(ctx, all, serviceKey)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready(lis.Addr().String())
	return srv.Serve(ctx, lis)
}

// streamgateUsers is streamgate's users service over all, in memory,
// with coalescing off, its callers presenting serviceKey.
func streamgateUsers(ctx context.Context, all []User, serviceKey string) (*socket.Server, error) {
	if serviceKey == "" {
		return nil, errors.New("streamgate-users: " + EnvServiceKey + " is unset")
	}
	st := users.NewMemoryStore()
	for _, u := range all {
		created, err := time.Parse(time.RFC3339, u.CreatedAt)
		if err != nil {
			return nil, err
		}
		if err := st.Create(ctx, users.User{ID: u.ID, Name: u.Name, Email: u.Email, Status: u.Status, CreatedAt: created}); err != nil {
			return nil, err
		}
	}
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		return nil, err
	}
	srv, err := socket.NewServer(socket.Config{Name: "users", Version: "bench"}, socket.WithKeys(keys), socket.WithoutCoalescing())
	if err != nil {
		return nil, err
	}
	if err := users.Register(srv, st); err != nil {
		return nil, err
	}
	return srv, nil
}
