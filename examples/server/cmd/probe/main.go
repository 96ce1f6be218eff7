// probe is the health check that ships beside the server: the image has no shell or curl,
// so `docker run … /bin/probe` (or a HEALTHCHECK) asks the server itself.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	url := "http://127.0.0.1:8080/about"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	client := http.Client{Timeout: 5 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	defer response.Body.Close()
	body, _ := io.ReadAll(response.Body)
	fmt.Printf("%s %s", response.Status, body)
	if response.StatusCode != http.StatusOK {
		os.Exit(1)
	}
}
