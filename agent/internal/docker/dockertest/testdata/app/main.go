// Command app is the test workload of the agent's Docker tests: a static binary that makes
// a one-file image. "app serve ADDR" answers HTTP with its hostname and writes a log line
// to stdout (and every third to stderr) twice a second; "app check" is its health check.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app serve ADDR | app check")
		os.Exit(2)
	}
	host, _ := os.Hostname()
	switch os.Args[1] {
	case "serve":
		addr := ":8080"
		if len(os.Args) > 2 {
			addr = os.Args[2]
		}
		fmt.Printf("started %s version=%s\n", host, os.Getenv("APP_VERSION"))
		go func() {
			for i := 1; ; i++ {
				time.Sleep(500 * time.Millisecond)
				if i%3 == 0 {
					fmt.Fprintf(os.Stderr, "tick %d from %s\n", i, host)
				} else {
					fmt.Printf("tick %d from %s\n", i, host)
				}
			}
		}()
		err := http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, host)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "check":
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:8080/")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
	default:
		os.Exit(2)
	}
}
