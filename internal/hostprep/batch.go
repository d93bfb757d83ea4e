package hostprep

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// batch runs steps as one script in one SSH session: on an emulated host a
// session and its sudo cost about 0.3 s each, more than most steps. The first
// step that fails stops the script, and the error names that step.
type batch struct {
	steps []batchStep
}

type batchStep struct{ name, script string }

func (b *batch) add(name, script string) { b.steps = append(b.steps, batchStep{name, script}) }

func (b *batch) names() []string {
	names := make([]string, len(b.steps))
	for i, s := range b.steps {
		names[i] = s.name
	}
	return names
}

// failedStepLine is what the script prints when a step fails.
var failedStepLine = regexp.MustCompile(`kiln-step-failed: (\d+)`)

func (b *batch) script() string {
	var s strings.Builder
	s.WriteString("set -e\nstep=0\ntrap 'echo \"kiln-step-failed: $step\" >&2' ERR\n")
	for i, st := range b.steps {
		s.WriteString("step=" + strconv.Itoa(i) + "\n" + st.script + "\n")
	}
	return s.String()
}

// run runs the batch; a failure is reported as the failing step's, with that
// step's commands.
func (b *batch) run(ctx context.Context, c *remote.Client) error {
	_, err := c.Run(ctx, strings.Join(b.names(), ", "), "bash -c "+remote.ShellQuote(b.script()))
	var se *remote.StepError
	if errors.As(err, &se) {
		if m := failedStepLine.FindStringSubmatch(se.Stderr); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(b.steps) {
				se.Step, se.Command = b.steps[i].name, b.steps[i].script
				se.Stderr = strings.TrimSpace(failedStepLine.ReplaceAllString(se.Stderr, ""))
			}
		}
	}
	return err
}
