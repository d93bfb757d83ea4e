package hostprep

import (
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// Every host script parses in bash, passes shellcheck where this machine has
// it, and is embedded: a file under scripts/ that nothing runs is a mistake.
func TestScripts(t *testing.T) { testenv.CheckScripts(t, "scripts", "scripts.go") }
