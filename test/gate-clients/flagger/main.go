// Command flagger-harness calls the webhooks of a Flagger Canary with Flagger v1.36.1's own
// controller.CallWebhook: the same payload (name, namespace, phase, checksum, metadata), the same
// retrying client and timeout, and the same verdict (an error for any status above 202, carrying
// the whole answer body).
//
//	flagger-harness -canary docs/examples/flagger-canary.yaml -base http://127.0.0.1:8080
//
// -base replaces scheme and host of every webhook URL (the examples name the in-cluster Service).
// Prints one JSON object per webhook on stdout: {"webhook", "type", "phase", "ok", "error"}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"

	flaggerv1 "github.com/fluxcd/flagger/pkg/apis/flagger/v1beta1"
	"github.com/fluxcd/flagger/pkg/controller"
	"sigs.k8s.io/yaml"
)

type result struct {
	Webhook string `json:"webhook"`
	Type    string `json:"type"`
	Phase   string `json:"phase"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// phaseOf is the canary phase Flagger's scheduler is in when it calls each hook type; a
// confirm-rollout hook runs before the canary has a phase at all.
var phaseOf = map[flaggerv1.HookType]flaggerv1.CanaryPhase{
	flaggerv1.ConfirmRolloutHook:   "",
	flaggerv1.PreRolloutHook:       flaggerv1.CanaryPhaseProgressing,
	flaggerv1.RolloutHook:          flaggerv1.CanaryPhaseProgressing,
	flaggerv1.ConfirmPromotionHook: flaggerv1.CanaryPhaseProgressing,
	flaggerv1.PostRolloutHook:      flaggerv1.CanaryPhaseSucceeded,
}

func main() {
	canaryPath := flag.String("canary", "", "Canary YAML file")
	base := flag.String("base", "", "scheme://host:port replacing each webhook URL's own")
	flag.Parse()
	if err := run(*canaryPath, *base); err != nil {
		fmt.Fprintln(os.Stderr, "flagger-harness:", err)
		os.Exit(2)
	}
}

func run(canaryPath, base string) error {
	raw, err := os.ReadFile(canaryPath)
	if err != nil {
		return err
	}
	var canary flaggerv1.Canary
	if err := yaml.UnmarshalStrict(raw, &canary); err != nil {
		return fmt.Errorf("%s: %w", canaryPath, err)
	}
	if canary.GetAnalysis() == nil {
		return fmt.Errorf("%s: no analysis", canaryPath)
	}
	out := json.NewEncoder(os.Stdout)
	for _, hook := range canary.GetAnalysis().Webhooks {
		if base != "" {
			target, err := url.Parse(hook.URL)
			if err != nil {
				return err
			}
			replacement, err := url.Parse(base)
			if err != nil {
				return err
			}
			target.Scheme, target.Host = replacement.Scheme, replacement.Host
			hook.URL = target.String()
		}
		phase := phaseOf[hook.Type]
		r := result{Webhook: hook.Name, Type: string(hook.Type), Phase: string(phase), OK: true}
		if err := controller.CallWebhook(canary, phase, hook); err != nil {
			r.OK, r.Error = false, err.Error()
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
