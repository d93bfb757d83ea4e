package hostprep

import (
	"os"
	"os/exec"
	"testing"
)

// The batch script runs here in bash: steps run in order, the first failure
// stops it and is named.
func TestBatchNamesTheFailingStep(t *testing.T) {
	dir := t.TempDir()
	var b batch
	b.add("first", `touch "$1"`, dir+"/first")
	b.add("second", "false")
	b.add("third", `touch "$1"`, dir+"/third")
	out, err := exec.Command("bash", append([]string{"-c", batchScript, "kiln"}, b.args()...)...).CombinedOutput()
	if err == nil {
		t.Fatal("the batch succeeded")
	}
	m := failedStepLine.FindStringSubmatch(string(out))
	if m == nil || m[1] != "1" {
		t.Errorf("output %q does not name step second", out)
	}
	if _, err := os.Stat(dir + "/first"); err != nil {
		t.Error("the step before the failure did not run")
	}
	if _, err := os.Stat(dir + "/third"); err == nil {
		t.Error("a step after the failure ran")
	}
}
