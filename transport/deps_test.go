package transport_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// An integrator who links the Go client gets the wire types and the codec,
// not a Raft node: the package's dependency list holds nothing of the
// domain, Raft, the actors or BoltDB.
func TestClientDependencies(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	for _, d := range deps {
		for _, banned := range []string{"hashicorp/", "anthdm/hollywood", "bbolt", "boltdb", "switchboard/fsm", "switchboard/cluster", "switchboard/actors", "switchboard/node"} {
			if strings.Contains(d, banned) {
				t.Errorf("the client package depends on %s", d)
			}
		}
	}
}
