package handlers_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upgradewatch/upgradewatch/handlers"
)

type functionJSON struct {
	Bindings []struct {
		Type      string   `json:"type"`
		AuthLevel string   `json:"authLevel"`
		Direction string   `json:"direction"`
		Name      string   `json:"name"`
		Methods   []string `json:"methods"`
		Route     string   `json:"route"`
	} `json:"bindings"`
}

// Every function folder is served: HTTP functions at authLevel function, on a
// route the server answers (with forwarding on, the host replays the request
// to /api/<route>); other triggers at POST /<FunctionName>.
func TestEveryFunctionHasARoute(t *testing.T) {
	dirs, err := filepath.Glob("../functions/*/function.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no function.json found: %v", err)
	}
	srv := handlers.New(nil, handlers.Options{})
	param := regexp.MustCompile(`\{\*?([A-Za-z]+)\??\}`)
	optional := regexp.MustCompile(`/\{[A-Za-z]+\?\}`)
	sample := map[string]string{"subscriptionId": "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7", "resourceGroup": "rg-payments-prod",
		"clusterName": "aks-payments-weu", "path": "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7/rg-payments-prod/aks-payments-weu/nodes",
		"id": "20261124T093000Z-4f1a9c2e"}
	for _, path := range dirs {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var fn functionJSON
			if err := json.Unmarshal(b, &fn); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if len(fn.Bindings) == 0 {
				t.Fatalf("%s has no bindings", path)
			}
			trigger := fn.Bindings[0]
			methods, urls := []string{http.MethodPost}, []string{"/" + name}
			if trigger.Type == "httpTrigger" {
				// The dashboard is for people in a browser: App Service
				// Authentication guards it in Azure, and a function key
				// must never be needed in (or leak through) its links.
				if want := authLevelOf(name); trigger.AuthLevel != want {
					t.Errorf("authLevel %q, want %s", trigger.AuthLevel, want)
				}
				if len(fn.Bindings) != 2 || fn.Bindings[1].Type != "http" {
					t.Errorf("an HTTP function needs exactly one http output for the host to forward the raw request")
				}
				if len(trigger.Methods) == 0 {
					t.Fatalf("no methods: name each one the function serves")
				}
				methods = nil
				for _, m := range trigger.Methods {
					methods = append(methods, strings.ToUpper(m))
				}
				// Each method is served with an optional parameter ({id?})
				// given or left out (POST /api/silences, DELETE /api/silences/{id}).
				urls = []string{"/api/" + param.ReplaceAllStringFunc(trigger.Route, func(m string) string {
					return sample[param.FindStringSubmatch(m)[1]]
				})}
				if optional.MatchString(trigger.Route) {
					urls = append(urls, "/api/"+optional.ReplaceAllString(trigger.Route, ""))
				}
			}
			for _, method := range methods {
				if !servedAny(srv, method, urls) {
					t.Errorf("%s %v is not served", method, urls)
				}
			}
		})
	}
}

// servedAny reports whether the server routes method to one of urls. A nil
// store: a served route fails past routing (panic recovered) or answers with
// something else than the router's 404.
func servedAny(srv *handlers.Server, method string, urls []string) bool {
	for _, url := range urls {
		rec := httptest.NewRecorder()
		func() {
			defer func() { _ = recover() }()
			srv.ServeHTTP(rec, httptest.NewRequest(method, url, strings.NewReader("{}")))
		}()
		if rec.Code != http.StatusNotFound || !(strings.Contains(rec.Body.String(), "no function is served") ||
			strings.Contains(rec.Body.String(), "no such resource")) {
			return true
		}
	}
	return false
}

func authLevelOf(function string) string {
	if function == handlers.FunctionDashboard {
		return "anonymous"
	}
	return "function"
}

// The export's batches arrive as the handler expects them only with these
// settings (a JSON string holding an array of message strings). The retry
// policy is bounded, so a poison record cannot stall the export (issue 12),
// and exponential up to minutes, so a storage outage of about 25 minutes
// loses nothing: the Event Hubs trigger moves its checkpoint past a batch
// after the last attempt, on which the handler keeps what it cannot commit.
func TestActivityLogStreamBinding(t *testing.T) {
	b, err := os.ReadFile("../functions/ActivityLogStream/function.json")
	if err != nil {
		t.Fatal(err)
	}
	var fn struct {
		Bindings []struct {
			Type, Name, Direction, Cardinality, DataType, EventHubName, Connection, ConsumerGroup string
		} `json:"bindings"`
		Retry struct {
			Strategy        string `json:"strategy"`
			MaxRetryCount   int    `json:"maxRetryCount"`
			MaximumInterval string `json:"maximumInterval"`
		} `json:"retry"`
	}
	if err := json.Unmarshal(b, &fn); err != nil {
		t.Fatal(err)
	}
	if len(fn.Bindings) != 1 {
		t.Fatalf("bindings %+v, want one trigger", fn.Bindings)
	}
	in := fn.Bindings[0]
	if in.Type != "eventHubTrigger" || in.Name != "events" || !strings.EqualFold(in.Cardinality, "many") || in.DataType != "string" {
		t.Errorf("trigger %+v, want eventHubTrigger events, cardinality many, dataType string", in)
	}
	if in.EventHubName == "" || in.Connection == "" || in.ConsumerGroup == "" {
		t.Errorf("trigger %+v names no hub, connection or consumer group", in)
	}
	if fn.Retry.Strategy != "exponentialBackoff" || fn.Retry.MaxRetryCount < 8 || fn.Retry.MaxRetryCount > 20 ||
		fn.Retry.MaximumInterval != "00:05:00" {
		t.Errorf("retry %+v, want exponentialBackoff up to 5 minutes with a bounded maxRetryCount (8 to 20)", fn.Retry)
	}
}
