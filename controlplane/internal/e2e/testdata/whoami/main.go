// Command whoami is the workload of the e2e tests' images: `whoami serve ADDR` answers every
// HTTP request with the container's hostname; `whoami fetch NAME PORT` resolves NAME and
// prints the answer of every address it resolves to, one line each (address, hostname).
// `whoami app` is an app as the platform runs it: it listens on $PORT, answers
// "release=$RELEASE host=<hostname>", logs a line every half second, serves /healthz (failing
// when $BROKEN is set) and drains its connections on SIGTERM; `whoami check` is its health
// check. It is built statically and imported as a one-file image: no registry is reachable.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
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
	case len(args) == 1 && args[0] == "app":
		return app()
	case len(args) == 1 && args[0] == "check":
		return check()
	}
	return fmt.Errorf("usage: whoami serve ADDR | whoami fetch NAME PORT | whoami app | whoami check")
}

func app() error {
	host, _ := os.Hostname()
	release, broken := os.Getenv("RELEASE"), os.Getenv("BROKEN") != ""
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if broken {
			http.Error(w, "broken on purpose", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "release=%s host=%s\n", release, host)
	})
	srv := &http.Server{Addr: ":" + os.Getenv("PORT"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Printf("release %s listening on %s\n", release, srv.Addr)
	go func() {
		for i := 1; ; i++ {
			time.Sleep(500 * time.Millisecond)
			fmt.Printf("tick %d from %s\n", i, host)
		}
	}()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	select {
	case err := <-errs:
		return err
	case <-stop:
		fmt.Println("draining")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
}

func check() error {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + os.Getenv("PORT") + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
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
