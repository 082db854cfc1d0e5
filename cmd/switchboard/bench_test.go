package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchCommand runs `switchboard bench` briefly on an embedded node:
// flags parse, the table is printed with its configuration, --json is
// written, and the exit status is 0 (no error, no notification fault).
func TestBenchCommand(t *testing.T) {
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "out.json")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"bench", "--embedded", "1", "--data", dir, "--scenario", "raw,pull",
		"--connectors", "2", "--group-commit", "on", "--duration", "1s", "--warmup", "100ms",
		"--lists", "2", "--agents", "4", "--json", jsonPath}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"switchboard bench --embedded 1", "raw C=2 gc=on", "pull C=2 gc=on", "missed", "4 agents"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Cases []struct {
			Scenario string `json:"scenario"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Cases) != 2 {
		t.Fatalf("json: %v, %d cases", err, len(rep.Cases))
	}
}

func TestBenchCommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--group-commit", "maybe"},
		{"bench", "--connectors", "x"},
		{"bench", "--scenario", "nope"},
		{"bench", "--addr", "127.0.0.1:1"}, // no token
		{"bench", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)\n%s", args, code, stderr.String())
		}
	}
}
