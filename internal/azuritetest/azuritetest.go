// Package azuritetest gives tests a real Table storage endpoint: the Azurite
// that `make test` starts, or one the test launches itself.
//
// A test that needs Azurite skips when none is reachable, unless CI=true or
// REQUIRE_AZURITE=1, where it fails: integration tests never skip silently in CI.
package azuritetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/upgradewatch/upgradewatch/internal/state"
)

// DefaultEndpoint is where `make test` runs Azurite.
const DefaultEndpoint = "http://127.0.0.1:10002/devstoreaccount1"

// Required reports whether a missing Azurite must fail the test rather than skip it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("REQUIRE_AZURITE") == "1"
}

// Endpoint returns the Azurite table endpoint, skipping or failing the test when
// it is unreachable.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("AZURITE_TABLE_ENDPOINT")
	if ep == "" {
		ep = DefaultEndpoint
	}
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatalf("AZURITE_TABLE_ENDPOINT %q: %v", ep, err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		if Required() {
			t.Fatalf("Azurite is required (CI=true or REQUIRE_AZURITE=1) but %s is unreachable: %v (run: make azurite-start)", u.Host, err)
		}
		t.Skipf("Azurite not reachable at %s (run: make azurite-start): %v", u.Host, err)
	}
	_ = conn.Close()
	return ep
}

// ConnectionString returns the development-account connection string for endpoint.
func ConnectionString(endpoint string) string {
	return strings.Replace(state.AzuriteConnectionString, "http://127.0.0.1:10002/devstoreaccount1", endpoint, 1)
}

// Prefix returns a table-name prefix unique to this test run (letters and
// digits only, as table names require).
func Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// Service returns a service client for endpoint with fast-failing retries.
func Service(t testing.TB, endpoint string) *aztables.ServiceClient {
	t.Helper()
	svc, err := state.NewServiceClient(state.Connection{Name: "test", ConnectionString: ConnectionString(endpoint)},
		state.ClientOptions{TryTimeout: 5 * time.Second, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// DropTables deletes the tables of a prefix when the test ends.
func DropTables(t testing.TB, svc *aztables.ServiceClient, names ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, n := range names {
			_, _ = svc.DeleteTable(ctx, n, nil)
		}
	})
}

// Rows lists the entities of a table that match filter ("" for all), each
// decoded into a JSON object as a dashboard reads it. Any error fails the test.
func Rows(t testing.TB, c *aztables.Client, filter string) []map[string]any {
	t.Helper()
	var opts *aztables.ListEntitiesOptions
	if filter != "" {
		opts = &aztables.ListEntitiesOptions{Filter: &filter}
	}
	pager := c.NewListEntitiesPager(opts)
	var out []map[string]any
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list entities where %q: %v", filter, err)
		}
		for _, b := range page.Entities {
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("list entities: %.200s: %v", b, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// Process is an Azurite the test started itself, for tests that stop and
// restart storage.
type Process struct {
	Endpoint string
	port     int
	bin      string
	dir      string
	cmd      *exec.Cmd
}

// Start launches a private Azurite on a free port, persisting to a temporary
// folder so that Stop (SIGINT: Azurite flushes its database) and Restart keep
// the data, as an outage of real storage would. The binary comes
// from AZURITE_BIN, else .azurite/node_modules/.bin/azurite-table above the
// working directory.
func Start(t testing.TB) *Process {
	t.Helper()
	bin := os.Getenv("AZURITE_BIN")
	if bin == "" {
		if wd, err := os.Getwd(); err == nil {
			for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
				c := filepath.Join(d, ".azurite", "node_modules", ".bin", "azurite-table")
				if _, err := os.Stat(c); err == nil {
					bin = c
					break
				}
			}
		}
	}
	if bin == "" {
		if Required() {
			t.Fatal("Azurite is required but no azurite-table binary was found (set AZURITE_BIN or run make setup)")
		}
		t.Skip("no azurite-table binary (run make setup)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	p := &Process{Endpoint: fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", port), port: port, bin: bin, dir: t.TempDir()}
	p.Restart(t)
	t.Cleanup(p.Stop)
	return p
}

// Restart starts the process again (after Stop), on the same port.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command(p.bin, "--tableHost", "127.0.0.1", "--tablePort", fmt.Sprint(p.port),
		"--location", p.dir, "--silent", "--disableTelemetry")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start azurite: %v", err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), 200*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.Stop()
	t.Fatalf("azurite did not open port %d in time", p.port)
}

// Stop interrupts the process, which saves its database, and waits for it to exit.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
}
