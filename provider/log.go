package provider

import (
	"context"
	"log/slog"
	"slices"

	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/kilnhq/terraform-provider-kiln/internal/redact"
)

// kilnLog is the one logger Kiln's engines write progress to. Its handler
// forwards each record to Terraform's log through the request's context, which
// carries the CLI's log sink, without URL credentials (a mirror or proxy URL
// may carry them).
var kilnLog = slog.New(tflogHandler{})

// tflogHandler is a slog.Handler over tflog. Groups are flattened into the
// field names: the engines use none.
type tflogHandler struct {
	attrs []slog.Attr
}

func (tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]any, len(h.attrs)+r.NumAttrs())
	add := func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Resolve().Any()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	fields = redact.Secrets{}.Fields(fields)
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return tflogHandler{attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h tflogHandler) WithGroup(string) slog.Handler { return h }
