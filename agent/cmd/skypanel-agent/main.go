// Command skypanel-agent runs on every Swarm node: it enrolls with a one-time token, keeps a
// mutual-TLS session to the control plane, reports the node's health and carries out the
// commands the control plane pushes. Only `version` exists yet; enrollment and the session
// come with the node-agents work.
package main

import (
	"fmt"
	"os"

	"skypanel/shared/buildinfo"
)

const usage = `skypanel-agent runs on every Swarm node of a SkyPanel platform.

Usage:
  skypanel-agent version   print the version

Enrollment (install, run) is not built yet.
`

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println(buildinfo.String())
		return
	}
	fmt.Fprint(os.Stderr, usage)
	if len(os.Args) == 2 && (os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help") {
		return
	}
	os.Exit(2)
}
