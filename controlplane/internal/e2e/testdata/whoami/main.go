// Command whoami is the workload of the e2e tests' images: `whoami serve ADDR` answers every
// HTTP request with the container's hostname; `whoami fetch NAME PORT` resolves NAME and
// prints the answer of every address it resolves to, one line each (address, hostname).
// It is built statically and imported as a one-file image: no registry is reachable.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "whoami:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "serve":
		host, _ := os.Hostname()
		srv := &http.Server{
			Addr:              args[1],
			ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintln(w, host)
			}),
		}
		return srv.ListenAndServe()
	case len(args) == 3 && args[0] == "fetch":
		return fetch(args[1], args[2])
	}
	return fmt.Errorf("usage: whoami serve ADDR | whoami fetch NAME PORT")
}

func fetch(name, port string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", name, err)
	}
	sort.Strings(addrs)
	client := &http.Client{Timeout: 3 * time.Second}
	for _, a := range addrs {
		resp, err := client.Get("http://" + net.JoinHostPort(a, port) + "/")
		if err != nil {
			return fmt.Errorf("fetch %s: %w", a, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", a, err)
		}
		fmt.Printf("%s %s", a, body)
	}
	return nil
}
