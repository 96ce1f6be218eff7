// hello is the small static program that kiln's quick start and tests pack into images.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

func main() {
	greeting := "Hello from kiln!"
	if len(os.Args) > 1 {
		greeting = "Hello, " + strings.Join(os.Args[1:], " ") + "!"
	}
	fmt.Println(greeting)
	fmt.Printf("running as uid %d on %s/%s\n", os.Getuid(), runtime.GOOS, runtime.GOARCH)
}
