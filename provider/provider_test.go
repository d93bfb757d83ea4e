package provider

import (
	"os"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// testAccProviders serves the provider in process to the CLI named by
// TF_ACC_TERRAFORM_PATH (Terraform or OpenTofu).
var testAccProviders = map[string]func() (tfprotov6.ProviderServer, error){
	"kiln": providerserver.NewProtocol6WithError(New("test")()),
}

// TestMain removes the process's shared guest after the tests.
func TestMain(m *testing.M) {
	if os.Getenv("TF_ACC") != "" && os.Getenv("KILN_TEST_PREBOOT") != "" {
		prebootSharedHost()
	}
	code := m.Run()
	removeSharedHost()
	os.Exit(code)
}

// testAccPreCheck skips acceptance tests unless TF_ACC is set, before they start
// any test infrastructure.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc)")
	}
}
