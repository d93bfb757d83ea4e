package hostprep

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// batch runs steps in one SSH session (scripts/batch.sh): on an emulated host
// a session and its sudo cost about 0.3 s each, more than most steps. The
// first step that fails stops the run, and the error names that step.
type batch struct {
	steps []batchStep
}

type batchStep struct {
	name, script string
	args         []string
}

func (b *batch) add(name, script string, args ...string) {
	b.steps = append(b.steps, batchStep{name, script, args})
}

func (b *batch) names() []string {
	names := make([]string, len(b.steps))
	for i, s := range b.steps {
		names[i] = s.name
	}
	return names
}

// args are batch.sh's arguments: each step's argument count, its script, then
// its arguments.
func (b *batch) args() []string {
	var args []string
	for _, s := range b.steps {
		args = append(append(args, strconv.Itoa(len(s.args)), s.script), s.args...)
	}
	return args
}

// failedStepLine is what batch.sh prints when a step fails.
var failedStepLine = regexp.MustCompile(`kiln-step-failed: (\d+)`)

// run runs the batch as root; a failure is reported as the failing step's,
// with that step's command.
func (b *batch) run(ctx context.Context, c *remote.Client) error {
	_, err := c.Run(ctx, strings.Join(b.names(), ", "), remote.BashCommand(batchScript, b.args()...))
	var se *remote.StepError
	if errors.As(err, &se) {
		if m := failedStepLine.FindStringSubmatch(se.Stderr); m != nil {
			if i, _ := strconv.Atoi(m[1]); i < len(b.steps) {
				step := b.steps[i]
				se.Step, se.Command = step.name, remote.BashCommand(step.script, step.args...)
				se.Stderr = strings.TrimSpace(failedStepLine.ReplaceAllString(se.Stderr, ""))
			}
		}
	}
	return err
}
