package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/hashicorp/terraform-plugin-log/tflogtest"
)

func TestKilnLogForwardsToTflog(t *testing.T) {
	var out bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &out)
	kilnLog.With("host", "10.0.0.7:22").WarnContext(ctx, "toolchain removed", "version", "1.23.10", "bytes", 42)

	entries, err := tflogtest.MultilineJSONDecode(&out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("got %d log entries, want 1: %s", len(entries), out.String())
	}
	got, _ := json.Marshal(map[string]any{"msg": entries[0]["@message"], "level": entries[0]["@level"],
		"host": entries[0]["host"], "version": entries[0]["version"], "bytes": entries[0]["bytes"]})
	want := `{"bytes":42,"host":"10.0.0.7:22","level":"warn","msg":"toolchain removed","version":"1.23.10"}`
	if string(got) != want {
		t.Fatalf("log entry %s, want %s", got, want)
	}
}
