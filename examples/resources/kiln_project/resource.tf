provider "kiln" {
  kubernetes {
    config_path = "~/.kube/config"
  }
}

resource "kiln_project" "shop" {
  name        = "shop"
  description = "The shop: a database, an API and a web front end."

  services = {
    db  = file("${path.module}/k8s/db.yaml")
    api = file("${path.module}/k8s/api.yaml")
    web = <<-YAML
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: web
      spec:
        selector:
          matchLabels: { app: web }
        template:
          metadata:
            labels: { app: web }
          spec:
            containers:
              - name: web
                image: $${image}
                env:
                  - name: API_URL
                    value: http://api.$${namespace}.svc:$${api_port}
    YAML
  }

  # db first; then api and web together.
  startup_order = [["db"], ["api", "web"]]

  variables = {
    api_port = "8080"
  }

  image_rule        = "registry.example.com/shop/{{.Service}}:{{.Timestamp}}-{{.Branch}}"
  build_pool_labels = { pool = "go" }
}
