// Command skypanel-installer prepares a node and enrolls its agent (setup-worker runs it).
// Only `version` exists yet.
package main

import (
	"fmt"
	"os"

	"skypanel/shared/buildinfo"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println(buildinfo.String())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: skypanel-installer version  (node installation is not built yet)")
	os.Exit(2)
}
