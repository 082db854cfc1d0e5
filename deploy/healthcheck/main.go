// Command healthcheck is the container image's health probe: the image
// has no shell and no curl, so Docker's HEALTHCHECK and the compose file
// run this instead. It GETs one URL and exits 0 on a 200, 1 otherwise.
//
//	healthcheck http://127.0.0.1:7402/readyz
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	os.Exit(probe(os.Args[1], os.Stdout, os.Stderr))
}

// probe GETs url and returns the exit status: 0 for a 200, 1 otherwise.
// The answer's first bytes (the node's JSON reason) go to stdout, where
// `docker inspect` shows them.
func probe(url string, stdout, stderr io.Writer) int {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}
