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

// testAccPreCheck skips acceptance tests unless TF_ACC is set, before they start
// any test infrastructure.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make testacc)")
	}
}

// testAccBehaviourSuite is testAccPreCheck for the long guest suites (drift,
// failures, reboots). A smoke run (KILN_ACC_SCOPE=smoke, Terraform's half of
// make test) skips them: they run once, on OpenTofu, while every resource is
// still applied, planned empty and destroyed on both CLIs by the other tests.
func testAccBehaviourSuite(t *testing.T) {
	t.Helper()
	testAccPreCheck(t)
	if os.Getenv("KILN_ACC_SCOPE") == "smoke" {
		t.Skip("behaviour suite: skipped in a smoke run (KILN_ACC_SCOPE=smoke)")
	}
}
