package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// roots is a Scope over fixed values.
type roots map[string]any

func (r roots) Root(name string) any { return r[name] }

// testScope is what the template tests read.
var testScope = roots{
	"path":   map[string]any{"id": "42"},
	"body":   map[string]any{"card": "4242", "n": json.Number("7"), "deep": map[string]any{"x": true}},
	"caller": map[string]any{"subject": "alice", "roles": []any{"admin", "customer"}},
	"order":  map[string]any{"total": json.Number("12.50"), "lines": []any{"a"}, "id": nil},
}

func TestTemplateEval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		want      any
	}{
		{"plain text", "EUR", "EUR"},
		{"dollar without brace", "$5 {x}", "$5 {x}"},
		{"whole string keeps a number", "${order.total}", json.Number("12.50")},
		{"whole string keeps a mapping", "${body.deep}", map[string]any{"x": true}},
		{"whole string keeps a list", "${caller.roles}", []any{"admin", "customer"}},
		{"whole body", "${body}", testScope["body"]},
		{"whole missing is nil", "${body.none}", nil},
		{"whole null is nil", "${order.id}", nil},
		{"through a non-mapping is nil", "${body.card.x}", nil},
		{"unknown step is nil", "${other.x}", nil},
		{"text", "order ${path.id} for ${caller.subject}", "order 42 for alice"},
		{"text of a number", "n=${body.n}", "n=7"},
		{"text of a missing value", "[${body.none}]", "[]"},
		{"text of a mapping", "d=${body.deep}", `d={"x":true}`},
		{"text of a list", "${caller.roles}!", `["admin","customer"]!`},
		{"two references", "${path.id}${path.id}", "4242"},
		{"dollar before a reference", "$${path.id}", "$42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, _, problems := parseString(tt.src)
			if problems != nil {
				t.Fatalf("problems: %v", problems)
			}
			tmpl := &Template{src: tt.src, node: n}
			if got := tmpl.Eval(testScope); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Eval = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestTemplateText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src, want string
		ok        bool
	}{
		{"${path.id}", "42", true},
		{"${order.total}", "12.50", true},
		{"x-${body.none}", "x-", true},
		{"${body.none}", "", false},
		{"${body.deep}", "", false},
		{"${caller.roles}", "", false},
	}
	for _, tt := range tests {
		n, _, _ := parseString(tt.src)
		got, ok := (&Template{src: tt.src, node: n}).Text(testScope)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Text(%q) = %q, %v; want %q, %v", tt.src, got, ok, tt.want, tt.ok)
		}
	}
}

func TestTemplateBody(t *testing.T) {
	t.Parallel()
	cfg, err := Parse("gateway.yaml", []byte(`services: {orders: {target: "orders:9000"}}
versions:
  v1:
    resources:
      orders:
        service: orders
        actions:
          - name: pay
            pipeline:
              - {as: order, action: GET_ORDER, id: "${path.id}"}
              - action: PAY
                body:
                  amount: ${order.total}
                  constant: {currency: EUR, n: 3, list: [1, x]}
                  lines: ["${order.lines}", "of ${path.id}", 2.5, null]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	pay, _ := cfg.Versions["v1"].Resources["orders"].Lookup(FormItemAction, "pay", "POST")
	body := pay.Pipeline[1].Body
	if _, ok := body.node.(object)["constant"].(literal); !ok {
		t.Errorf("a mapping without references is not compiled to a constant: %#v", body.node.(object)["constant"])
	}
	got, err := json.Marshal(body.Eval(testScope))
	want := `{"amount":12.50,"constant":{"currency":"EUR","list":[1,"x"],"n":3},"lines":[["a"],"of 42",2.5,null]}`
	if err != nil || string(got) != want {
		t.Errorf("body = %s, %v; want %s", got, err, want)
	}
}

// FuzzTemplate checks that the template parser never panics, that what it
// accepts runs, and that a string without "${" is its own text.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{
		"", "EUR", "${path.id}", "order ${path.id} for ${caller.subject}", "${body.a.b-c_d}",
		"${", "${}", "${a..b}", "x-${path.id", "$${a}}", "${a}${b}", "${ a }", "${a.b}}{", "}${x.y}{",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, refs, problems := parseString(s)
		if len(problems) > 0 {
			return
		}
		for _, r := range refs {
			if !strings.Contains(s, "${"+r.String()+"}") {
				t.Fatalf("reference %q is not in %q", r, s)
			}
			for _, p := range append([]string{r.root}, r.fields...) {
				if !isRefPart(p) {
					t.Fatalf("reference %q accepted", r)
				}
			}
		}
		v := (&Template{src: s, node: n}).Eval(testScope)
		if !strings.Contains(s, "${") && v != s {
			t.Fatalf("Eval(%q) = %#v", s, v)
		}
		if _, whole := n.(*reference); !whole {
			if _, ok := v.(string); !ok {
				t.Fatalf("Eval(%q) = %#v, want a string", s, v)
			}
		}
	})
}
