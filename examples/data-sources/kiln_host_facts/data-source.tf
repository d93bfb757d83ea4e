data "kiln_host_facts" "builder" {
  ssh {
    host     = "build-7.example.com"
    user     = "root"
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOR1+7B5ZrtXvdMnc6Ef2Bw5AkL8cUeD4rIw3F1/ArSJ"
  }
}

output "cgroup_mode" {
  value = data.kiln_host_facts.builder.facts.cgroup_mode
}
