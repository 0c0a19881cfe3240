package host

import (
	"encoding/json"
	"testing"
)

// TestRetry reads Metadata.RetryContext in the forms the host sends it.
func TestRetry(t *testing.T) {
	cases := []struct {
		name     string
		metadata string
		want     Retry
		last     bool
	}{
		{"absent", `{}`, Retry{}, false},
		{"first attempt", `{"RetryContext":{"RetryCount":0,"MaxRetryCount":8,"Exception":null}}`, Retry{Count: 0, Max: 8, Present: true}, false},
		{"last attempt", `{"RetryContext":{"RetryCount":8,"MaxRetryCount":8,"Exception":{"Message":"503"}}}`, Retry{Count: 8, Max: 8, Present: true}, true},
		{"string-wrapped", `{"RetryContext":"{\"RetryCount\":\"3\",\"MaxRetryCount\":\"3\"}"}`, Retry{Count: 3, Max: 3, Present: true}, true},
		{"unbounded", `{"RetryContext":{"RetryCount":40,"MaxRetryCount":-1}}`, Retry{Count: 40, Max: -1, Present: true}, false},
		{"unparseable", `{"RetryContext":{"RetryCount":"many","MaxRetryCount":8}}`, Retry{}, false},
		{"not an object", `{"RetryContext":[1,2]}`, Retry{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r InvokeRequest
			if err := json.Unmarshal([]byte(tc.metadata), &r.Metadata); err != nil {
				t.Fatal(err)
			}
			got := r.Retry()
			if got != tc.want || got.Last() != tc.last {
				t.Errorf("Retry: got %+v (last %v), want %+v (last %v)", got, got.Last(), tc.want, tc.last)
			}
		})
	}
}
