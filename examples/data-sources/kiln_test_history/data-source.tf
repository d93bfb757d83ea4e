data "kiln_test_history" "backend_unit" {
  project = "shop"
  name    = "backend-unit"
}

output "backend_unit_runs" {
  value = [for r in data.kiln_test_history.backend_unit.runs : "#${r.number} ${substr(r.commit, 0, 12)}: ${r.status}, ${r.pass_rate}% of ${r.total - r.skipped}"]
}
