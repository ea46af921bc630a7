package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"

	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
)

func TestHeartbeatsAreLoggedOnlyWhenTheyFailOrAtDebugLevel(t *testing.T) {
	report := agentv1connect.AgentServiceReportProcedure
	for _, tc := range []struct {
		level     slog.Level
		procedure string
		err       error
		logged    bool
	}{
		{slog.LevelInfo, report, nil, false},
		{slog.LevelInfo, report, connect.NewError(connect.CodePermissionDenied, errors.New("revoked")), true},
		{slog.LevelInfo, agentv1connect.AgentServiceAckProcedure, nil, true},
		{slog.LevelDebug, report, nil, true},
	} {
		var out bytes.Buffer
		l := newErrorLogger(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: tc.level})))
		_ = l.log(context.Background(), tc.procedure, time.Now(), tc.err)
		if logged := out.Len() > 0; logged != tc.logged {
			t.Errorf("%s at %s level with error %v: logged %v, want %v (%s)", tc.procedure, tc.level, tc.err, logged, tc.logged, out.String())
		}
	}
}
