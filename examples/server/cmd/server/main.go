// server is kiln's example of a production image: an HTTP server on kiln's static base,
// running as the nonroot user, serving static assets placed by [[images.NAME.files]].
//
// GET /about reports what the container gives it: its uid and gid, how many TLS roots
// x509.SystemCertPool loaded, whether tzdata resolves a zone, and whether its state folder
// is writable. `server -about` prints the same report and exits.
package main

import (
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

type about struct {
	UID           int    `json:"uid"`
	GID           int    `json:"gid"`
	TLSRoots      int    `json:"tls_roots"`
	Zone          string `json:"zone"`
	StateWritable bool   `json:"state_writable"`
	TmpWritable   bool   `json:"tmp_writable"`
}

func writable(folder string) bool {
	file, err := os.CreateTemp(folder, "probe-*")
	if err != nil {
		return false
	}
	file.Close()
	os.Remove(file.Name())
	return true
}

func report() about {
	result := about{UID: os.Getuid(), GID: os.Getgid()}
	if pool, err := x509.SystemCertPool(); err == nil {
		//lint:ignore SA1019 counting the roots is all this needs
		result.TLSRoots = len(pool.Subjects()) //nolint:staticcheck
	}
	if zone, err := time.LoadLocation("Europe/Berlin"); err == nil {
		result.Zone = time.Date(2026, 7, 1, 12, 0, 0, 0, zone).Format("MST -0700")
	} else {
		result.Zone = "error: " + err.Error()
	}
	result.StateWritable = writable(env("STATE", "/var/lib/server"))
	result.TmpWritable = writable(os.TempDir())
	return result
}

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func main() {
	printAbout := flag.Bool("about", false, "print the report and exit")
	flag.Parse()
	if *printAbout {
		json.NewEncoder(os.Stdout).Encode(report())
		return
	}
	assets := env("ASSETS", "/srv/static")
	address := env("ADDRESS", ":8080")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(assets)))
	mux.HandleFunc("/about", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(report())
	})
	log.Printf("serving %s on %s as uid %d", filepath.Clean(assets), address, os.Getuid())
	if err := http.ListenAndServe(address, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
