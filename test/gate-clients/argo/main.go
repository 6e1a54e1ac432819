// Command argo-harness evaluates the metrics of an Argo Rollouts AnalysisTemplate the way the
// Argo Rollouts v1.10.2 analysis controller does, with its own code: arguments merged and resolved
// (utils/analysis MergeArgs, ResolveArgs, ResolveMetricArgs), then each web metric measured by the
// real web metric provider (metricproviders/webmetric), whose result evaluation is Argo's
// (utils/evaluate). Job metrics are not run here (no cluster): their resolved pod spec is printed,
// so the caller can run the command as the Job would.
//
//	argo-harness -template docs/examples/analysis-template.yaml -arg aggregator=http://127.0.0.1:8080
//
// Prints one JSON object per metric on stdout: {"metric", "provider", "phase", "value", "message", "job"}.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/argoproj/argo-rollouts/metricproviders/webmetric"
	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	analysisutil "github.com/argoproj/argo-rollouts/utils/analysis"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

type argList []string

func (a *argList) String() string     { return strings.Join(*a, ",") }
func (a *argList) Set(v string) error { *a = append(*a, v); return nil }

type result struct {
	Metric   string          `json:"metric"`
	Provider string          `json:"provider"`
	Phase    string          `json:"phase"`
	Value    string          `json:"value"`
	Message  string          `json:"message,omitempty"`
	Job      *corev1.PodSpec `json:"job,omitempty"`
}

func main() {
	templatePath := flag.String("template", "", "AnalysisTemplate YAML file")
	var args argList
	flag.Var(&args, "arg", "name=value, as a Rollout's analysis step passes args (repeatable)")
	flag.Parse()
	if err := run(*templatePath, args); err != nil {
		fmt.Fprintln(os.Stderr, "argo-harness:", err)
		os.Exit(2)
	}
}

func run(templatePath string, given []string) error {
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		return err
	}
	var template v1alpha1.AnalysisTemplate
	if err := yaml.UnmarshalStrict(raw, &template); err != nil {
		return fmt.Errorf("%s: %w", templatePath, err)
	}
	var incoming []v1alpha1.Argument
	for _, a := range given {
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("-arg %q: expected name=value", a)
		}
		incoming = append(incoming, v1alpha1.Argument{Name: name, Value: &value})
	}
	args, err := analysisutil.MergeArgs(incoming, template.Spec.Args)
	if err != nil {
		return err
	}
	if err := analysisutil.ResolveArgs(args); err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	for _, m := range template.Spec.Metrics {
		metric, err := analysisutil.ResolveMetricArgs(m, args)
		if err != nil {
			return fmt.Errorf("metric %s: %w", m.Name, err)
		}
		r := result{Metric: metric.Name}
		switch {
		case metric.Provider.Web != nil:
			r.Provider = "web"
			client, err := webmetric.NewWebMetricHttpClient(*metric)
			if err != nil {
				return err
			}
			parser, err := webmetric.NewWebMetricJsonParser(*metric)
			if err != nil {
				return err
			}
			provider := webmetric.NewWebMetricProvider(*log.NewEntry(log.New()), client, parser)
			measurement := provider.Run(&v1alpha1.AnalysisRun{}, *metric)
			r.Phase, r.Value, r.Message = string(measurement.Phase), measurement.Value, measurement.Message
		case metric.Provider.Job != nil:
			r.Provider = "job"
			r.Job = &metric.Provider.Job.Spec.Template.Spec
		default:
			return fmt.Errorf("metric %s: only web and job providers are evaluated here", metric.Name)
		}
		if err := out.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
