// Command edgebin is a stand-in for skypanel-agent in the edge container test: it
// accepts the agent's `edge` command line and runs edge.Run, without depending on the
// rest of the agent.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"skypanel/agent/internal/edge"
)

func main() {
	args := os.Args[1:]
	if len(args) == 0 || args[0] != "edge" {
		fmt.Fprintln(os.Stderr, "usage: edgebin edge --config PATH [--http :80] [--https :443]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("edge", flag.ExitOnError)
	cfg := fs.String("config", "", "")
	httpAddr := fs.String("http", ":80", "")
	httpsAddr := fs.String("https", ":443", "")
	fs.Parse(args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := edge.Run(ctx, edge.Options{ConfigPath: *cfg, HTTPAddr: *httpAddr, HTTPSAddr: *httpsAddr,
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
