resource "kiln_project" "shop" {
  name        = "shop"
  description = "The shop: a database, an API and a web front end."

  services = {
    # Often file("${path.module}/k8s/db.yaml") and the like; inline here.
    db  = <<-YAML
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: db
      spec:
        selector:
          matchLabels: { app: db }
        template:
          metadata:
            labels: { app: db }
          spec:
            containers:
              - name: db
                image: $${image}
    YAML
    api = <<-YAML
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: api
      spec:
        selector:
          matchLabels: { app: api }
        template:
          metadata:
            labels: { app: api }
          spec:
            containers:
              - name: api
                image: $${image}
                ports:
                  - containerPort: $${api_port}
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: api
      spec:
        selector: { app: api }
        ports:
          - port: $${api_port}
    YAML
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
