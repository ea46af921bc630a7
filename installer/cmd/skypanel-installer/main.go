// Command skypanel-installer prepares this host as a SkyPanel node and enrolls its agent;
// setup-worker.sh downloads and runs it. See package installer for what it does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"skypanel/installer"
	"skypanel/shared/buildinfo"
)

const usage = `skypanel-installer prepares this host as a SkyPanel node (setup-worker.sh runs it).

Usage:
  skypanel-installer --token spen... [--agent-url URL] [--public-url URL] [flags]
  skypanel-installer --uninstall [--purge]
  skypanel-installer version

Flags:
`

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println(buildinfo.String())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "skypanel-installer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg installer.Config
	var uninstall bool
	fs := flag.NewFlagSet("skypanel-installer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Token, "token", os.Getenv("SKYPANEL_TOKEN"), "one-time enrollment token (spen...; env SKYPANEL_TOKEN); needed for the first enrollment")
	fs.StringVar(&cfg.AgentURL, "agent-url", "", "the control plane's agent endpoint (default https://<public-url host>:8443)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the control plane's public URL (for the clock check and the agent URL default)")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "address other nodes reach this one at (default: the address of the interface with the default route)")
	fs.StringVar(&cfg.Labels, "labels", "", "node labels, k=v,k2=v2")
	fs.StringVar(&cfg.DataDir, "data-dir", installer.DefaultDataDir, "the agent's identity and state")
	fs.StringVar(&cfg.Prefix, "prefix", installer.DefaultPrefix, "directory of the skypanel-agent binary")
	fs.StringVar(&cfg.DockerHost, "docker-host", "", "use this Docker Engine (unix:///... or tcp://...) and never install one")
	fs.BoolVar(&cfg.SkipDockerInstall, "skip-docker-install", false, "fail instead of installing Docker Engine when there is none")
	fs.BoolVar(&uninstall, "uninstall", false, "stop and remove the agent's service and binaries")
	fs.BoolVar(&cfg.Purge, "purge", false, "with --uninstall: delete the data dir (the node's identity) too")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	in, err := installer.New(cfg, installer.OSHost{}, stdout)
	if err != nil {
		return err
	}
	if uninstall {
		return in.Uninstall(ctx)
	}
	return in.Install(ctx)
}
