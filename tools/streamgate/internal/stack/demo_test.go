package stack_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamgate/streamgate/tools/internal/resttest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// browserTimeout bounds the whole walk through the demo page.
const browserTimeout = 2 * time.Minute

// chromium returns the path of a Chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: the demo page's browser test needs it (apt-get install chromium; .ci/run installs it)")
	return ""
}

// TestDemoPageInChromium signs in on the demo page in headless Chromium,
// creates an order and pays it, and checks that the page shows the
// order's status and the item's stock change: the page takes both from
// the events of its subscriptions, not from the answers.
func TestDemoPageInChromium(t *testing.T) {
	bin := chromium(t)
	s := startStack(t, stack.Options{})
	const stock = 5
	const user = "demo-alice"

	// The whole browser lives within browserTimeout.
	bounded, cancelBound := context.WithTimeout(context.Background(), browserTimeout)
	defer cancelBound()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(bounded,
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, pageState(ctx))
		}
	}
	// until waits for a JavaScript condition of the page, bounded, and
	// stops early when the page shows an error.
	until := func(what, expr string) {
		t.Helper()
		poll := fmt.Sprintf(`(%s) ? "ok" : (document.getElementById("error").textContent !== "" ? "error" : "")`, expr)
		got, err := chromedp.Run(ctx, chromedp.Poll[string](poll, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil || got != "ok" {
			t.Fatalf("%s: %v\n%s", what, err, pageState(ctx))
		}
	}
	read := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("read #%s: %v", id, err)
		}
		return v
	}
	text := func(id string) string {
		return fmt.Sprintf(`document.getElementById(%q).textContent`, id)
	}

	if s.demo != s.rest.Base+"/demo/" {
		t.Fatalf("the banner tells the demo page at %q, want %q", s.demo, s.rest.Base+"/demo/")
	}
	step("open the page", chromedp.Navigate(s.demo))
	until("the page's module loaded", `document.body.dataset.ready === "true"`)
	// The admin adds the item, as a person would on the running stack.
	step("sign in as the admin",
		chromedp.SetValue(chromedp.ID("token"), admin()),
		chromedp.Click(chromedp.ID("signin-button")))
	until("signed in as the admin", text("conn")+` === "open" && `+text("who")+`.includes("API key")`)
	step("add an item",
		chromedp.Click(chromedp.CSS("#shop details summary")),
		chromedp.SetValue(chromedp.ID("new-item-name"), "Demo book"),
		chromedp.SetValue(chromedp.ID("new-item-price"), "1500"),
		chromedp.SetValue(chromedp.ID("new-item-stock"), strconv.Itoa(stock)),
		chromedp.Click(chromedp.ID("create-item")))
	until("the item is created and shown", text("item-name")+`.startsWith("Demo book (")`)
	itemID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("item").value`))
	if err != nil || itemID == "" {
		t.Fatalf("the chosen item: %q, %v", itemID, err)
	}
	if got := s.item(t, itemID); got.Name != "Demo book" || got.Stock != stock {
		t.Fatalf("the page created %+v", got)
	}

	step("sign in as the user",
		chromedp.SetValue(chromedp.ID("token"), as(t, user)),
		chromedp.Click(chromedp.ID("signin-button")))
	until("signed in as the user", text("conn")+` === "open" && `+text("who")+`.includes("`+user+`")`)
	until("offered to create the user", `!document.getElementById("create-user").hidden`)
	step("create the user", chromedp.Click(chromedp.ID("create-user")))
	until("the user exists", text("account-status")+`.includes("exists")`)
	until("the item is offered", fmt.Sprintf(`!!document.querySelector('#item option[value=%q]')`, itemID))
	step("choose the item", chromedp.SetValue(chromedp.ID("item"), itemID))
	step("create an order", chromedp.Click(chromedp.ID("create-order")))
	until("the order is pending and followed", text("order-status")+` === "pending" && !document.getElementById("pay").disabled`)
	until("the item's stock is shown", text("item-stock")+` === "`+strconv.Itoa(stock)+`"`)
	orderID := read("order-id")

	step("pay", chromedp.Click(chromedp.ID("pay")))
	until("the order's status changed to paid", text("order-status")+` === "paid"`)
	until("the item's stock went down", text("item-stock")+` === "`+strconv.Itoa(stock-1)+`"`)
	if e := read("error"); e != "" {
		t.Errorf("the page shows an error: %s", e)
	}
	if path := os.Getenv("STREAMGATE_DEMO_SCREENSHOT"); path != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(path, png, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}

	// What the page showed is what the services hold.
	o := s.order(t, orderID)
	if o.Status != "paid" || o.UserID != user {
		t.Errorf("the order is %+v", o)
	}
	if got := s.item(t, itemID); got.Stock != stock-1 {
		t.Errorf("the item's stock is %d, want %d", got.Stock, stock-1)
	}
	// The page did the work over its socket: one payment, by the page.
	r := s.call(t, admin(), "GET", "/v1/payments?order_id="+orderID, nil).Want(t, http.StatusOK, "")
	if n := len(resttest.Into[struct{ Items []any }](t, r).Items); n != 1 {
		t.Errorf("%d payments of the order, want 1", n)
	}
}

// pageState is the page's connection, error and activity lines, for a
// failure message.
func pageState(ctx context.Context) string {
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`["conn", "error", "order-status", "item-stock", "log"].map(id => id + ": " + (document.getElementById(id)?.innerText ?? "")).join("\n")`))
	if err != nil {
		return "(the page's state is unreadable: " + err.Error() + ")"
	}
	return state
}
