package e2e

import (
	"os"
	"testing"
)

// TestMain removes the test image archive the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if imagePath != "" {
		os.Remove(imagePath)
	}
	os.Exit(code)
}
