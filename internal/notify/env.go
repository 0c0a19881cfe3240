package notify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Settings read by SinksFromEnv. Each is optional; any combination works.
const (
	EnvWebhookURL        = "UPGRADEWATCH_NOTIFY_WEBHOOK_URL"
	EnvEventGridEndpoint = "UPGRADEWATCH_NOTIFY_EVENTGRID_ENDPOINT"
	EnvEventGridKey      = "UPGRADEWATCH_NOTIFY_EVENTGRID_KEY"
	EnvTeamsURL          = "UPGRADEWATCH_NOTIFY_TEAMS_URL"
	EnvSlackURL          = "UPGRADEWATCH_NOTIFY_SLACK_URL"
)

// SinksFromEnv builds the sinks the settings configure, in the order webhook,
// eventgrid, teams, slack; none when none is set. The Event Grid sink uses
// UPGRADEWATCH_NOTIFY_EVENTGRID_KEY when set, else cred (the app's managed
// identity). opts, when given, applies to every sink (only the first is used).
//
// URLs must be https, or http to localhost/127.0.0.1 for local use. Errors name
// the setting, never its value: the values hold secrets.
func SinksFromEnv(getenv func(string) string, cred azcore.TokenCredential, opts ...Options) ([]Sink, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	var sinks []Sink
	var errs []error
	if u := get(EnvWebhookURL); u != "" {
		if s, err := NewWebhookSink(u, o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvWebhookURL, err))
		} else {
			sinks = append(sinks, s)
		}
	}
	endpoint, key := get(EnvEventGridEndpoint), get(EnvEventGridKey)
	switch {
	case endpoint == "" && key != "":
		errs = append(errs, fmt.Errorf("%s is set without %s", EnvEventGridKey, EnvEventGridEndpoint))
	case endpoint == "":
	case key == "" && cred == nil:
		errs = append(errs, fmt.Errorf("%s is set but there is neither %s nor a managed identity credential", EnvEventGridEndpoint, EnvEventGridKey))
	default:
		var s *EventGridSink
		var err error
		if key != "" {
			s, err = NewEventGridSinkWithKey(endpoint, azcore.NewKeyCredential(key), o)
		} else {
			s, err = NewEventGridSink(endpoint, cred, o)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvEventGridEndpoint, err))
		} else {
			sinks = append(sinks, s)
		}
	}
	if u := get(EnvTeamsURL); u != "" {
		if s, err := NewTeamsSink(u, o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvTeamsURL, err))
		} else {
			sinks = append(sinks, s)
		}
	}
	if u := get(EnvSlackURL); u != "" {
		if s, err := NewSlackSink(u, o); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", EnvSlackURL, err))
		} else {
			sinks = append(sinks, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sinks, nil
}
