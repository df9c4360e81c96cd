package cluster

import (
	"fmt"
	"net/http"
)

// ProcessReady is a condition for Eventually on a meshguard process started by
// a test: an error while it has not exited and its /readyz does not answer
// 200; once it has exited, an error saying so (the exit is put back on the
// channel for the caller).
func ProcessReady(exited chan error, readyzURL string) func() error {
	return func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("process exited: %v", err)
		default:
		}
		resp, err := http.Get(readyzURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	}
}
