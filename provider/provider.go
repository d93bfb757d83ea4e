// Package provider is Kiln's Terraform-facing layer: the provider, its resources
// and data sources. The work itself is done by the engines under internal/.
package provider

import (
	"context"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/kilnhq/terraform-provider-kiln/internal/delivery"
	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
	"github.com/kilnhq/terraform-provider-kiln/internal/kube"
	"github.com/kilnhq/terraform-provider-kiln/internal/libvirt"
	"github.com/kilnhq/terraform-provider-kiln/internal/oci"
	"github.com/kilnhq/terraform-provider-kiln/internal/vsphere"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/kilnhq/kiln"

// New returns a constructor for the provider at version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &kilnProvider{version: version} }
}

type kilnProvider struct {
	version string
}

type providerModel struct {
	Libvirt    *libvirtBlockModel    `tfsdk:"libvirt"`
	Vsphere    *vsphereBlockModel    `tfsdk:"vsphere"`
	Kubernetes *kubernetesBlockModel `tfsdk:"kubernetes"`
	SSH        *sshBlockModel        `tfsdk:"ssh"`
	Registry   *registryBlockModel   `tfsdk:"registry"`
}

type registryBlockModel struct {
	URL      types.String `tfsdk:"url"`
	Username types.String `tfsdk:"username"`
	Password types.String `tfsdk:"password"`
	Insecure types.Bool   `tfsdk:"insecure"`
}

type libvirtBlockModel struct {
	URI types.String `tfsdk:"uri"`
}

type vsphereBlockModel struct {
	Server             types.String `tfsdk:"server"`
	User               types.String `tfsdk:"user"`
	Password           types.String `tfsdk:"password"`
	AllowUnverifiedSSL types.Bool   `tfsdk:"allow_unverified_ssl"`
	Datacenter         types.String `tfsdk:"datacenter"`
}

type kubernetesBlockModel struct {
	ConfigPath           types.String `tfsdk:"config_path"`
	ConfigContext        types.String `tfsdk:"config_context"`
	Host                 types.String `tfsdk:"host"`
	Token                types.String `tfsdk:"token"`
	ClusterCACertificate types.String `tfsdk:"cluster_ca_certificate"`
	ClientCertificate    types.String `tfsdk:"client_certificate"`
	ClientKey            types.String `tfsdk:"client_key"`
}

type sshBlockModel struct {
	User       types.String `tfsdk:"user"`
	Port       types.Int64  `tfsdk:"port"`
	PrivateKey types.String `tfsdk:"private_key"`
	UseAgent   types.Bool   `tfsdk:"use_agent"`
	KnownHosts types.String `tfsdk:"known_hosts_file"`
}

// clients is what resources receive from Configure: one engine per configured
// provider block, nil for a block that is absent.
type clients struct {
	libvirt *libvirt.Client
	vsphere *vsphere.Client
	// delivery runs projects, environments and releases on the cluster of the
	// kubernetes block.
	delivery *delivery.Engine
	// ssh holds the provider's SSH defaults; toolchains is shared by every host
	// so each archive is fetched from its origin once.
	ssh        sshDefaults
	toolchains *gotoolchain.Fetcher
	// goToolsDir is the cache of the Go tools built for hosts (go.tools).
	goToolsDir string
	// registry is where builds push their outputs.
	registry *oci.Registry
}

func (p *kilnProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "kiln"
	resp.Version = p.version
}

func (p *kilnProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Kiln declares Go build infrastructure and delivery in HCL: Go build VMs on " +
			"libvirt (KVM) and vSphere, hardened Go hosts provisioned over SSH, golden images, and " +
			"ZadigX-style projects, environments and releases on Kubernetes. Each engine is enabled by " +
			"its block below; a resource whose engine block is missing fails at plan time, naming the block.",
		Blocks: map[string]schema.Block{
			"libvirt": schema.SingleNestedBlock{
				MarkdownDescription: "Enables the libvirt engine (`kiln_libvirt_vm`).",
				Attributes: map[string]schema.Attribute{
					"uri": schema.StringAttribute{
						MarkdownDescription: "libvirt connection URI, for example `qemu:///system`, " +
							"`qemu+tcp://host/system` or `qemu+ssh://user@host/system`. Defaults to " +
							"`LIBVIRT_DEFAULT_URI`, then `" + libvirt.DefaultURI + "`.",
						Optional: true,
					},
				},
			},
			"vsphere": schema.SingleNestedBlock{
				MarkdownDescription: "Connection to vCenter or ESXi for the vSphere engine.",
				Attributes: map[string]schema.Attribute{
					"server": schema.StringAttribute{
						MarkdownDescription: "vCenter or ESXi host name. Defaults to `VSPHERE_SERVER`.",
						Optional:            true,
					},
					"user": schema.StringAttribute{
						MarkdownDescription: "User name. Defaults to `VSPHERE_USER`.",
						Optional:            true,
					},
					"password": schema.StringAttribute{
						MarkdownDescription: "Password. Defaults to `VSPHERE_PASSWORD`.",
						Optional:            true,
						Sensitive:           true,
					},
					"allow_unverified_ssl": schema.BoolAttribute{
						MarkdownDescription: "Accept a server certificate that does not verify. Defaults to " +
							"`VSPHERE_ALLOW_UNVERIFIED_SSL`, then `false`.",
						Optional: true,
					},
					"datacenter": schema.StringAttribute{
						MarkdownDescription: "Default datacenter for inventory paths. Defaults to `VSPHERE_DATACENTER`.",
						Optional:            true,
					},
				},
			},
			"kubernetes": schema.SingleNestedBlock{
				MarkdownDescription: "Connection to the Kubernetes cluster that holds the delivery model.",
				Attributes: map[string]schema.Attribute{
					"config_path": schema.StringAttribute{
						MarkdownDescription: "Path to a kubeconfig file. Defaults to `KUBECONFIG`.",
						Optional:            true,
					},
					"config_context": schema.StringAttribute{
						MarkdownDescription: "Context to use from the kubeconfig; defaults to its current context.",
						Optional:            true,
					},
					"host": schema.StringAttribute{
						MarkdownDescription: "API server URL, instead of a kubeconfig.",
						Optional:            true,
					},
					"token": schema.StringAttribute{
						MarkdownDescription: "Bearer token for `host`.",
						Optional:            true,
						Sensitive:           true,
					},
					"cluster_ca_certificate": schema.StringAttribute{
						MarkdownDescription: "PEM CA bundle that signs the API server's certificate.",
						Optional:            true,
					},
					"client_certificate": schema.StringAttribute{
						MarkdownDescription: "PEM client certificate for `host`.",
						Optional:            true,
					},
					"client_key": schema.StringAttribute{
						MarkdownDescription: "PEM client key for `client_certificate`.",
						Optional:            true,
						Sensitive:           true,
					},
				},
			},
			"registry": schema.SingleNestedBlock{
				MarkdownDescription: "The OCI registry builds push their images and artifacts to (`kiln_build`), and read " +
					"back with one HEAD request each. Provider configuration is never stored in plan or state, so " +
					"`password` may come from an ephemeral resource or variable.",
				Attributes: map[string]schema.Attribute{
					"url": schema.StringAttribute{
						MarkdownDescription: "The registry: a host with an optional port (`registry.example.com`, " +
							"`127.0.0.1:5000`), optionally after `https://` or `http://` (`http://` implies `insecure`).",
						Optional:   true,
						Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
					},
					"username": schema.StringAttribute{
						MarkdownDescription: "Basic-auth user name; unset for anonymous access.",
						Optional:            true,
					},
					"password": schema.StringAttribute{
						MarkdownDescription: "Basic-auth password or token. It is sent to this registry only, never to " +
							"the registry of a base image, and kept out of logs and errors.",
						Optional:  true,
						Sensitive: true,
					},
					"insecure": schema.BoolAttribute{
						MarkdownDescription: "Speak plain HTTP: for a registry on the loopback or a test network only. " +
							"Defaults to `false`.",
						Optional: true,
					},
				},
			},
			"ssh": schema.SingleNestedBlock{
				MarkdownDescription: "Defaults for the SSH connections of host provisioning steps; each " +
					"resource's own `ssh` block overrides them.",
				Attributes: map[string]schema.Attribute{
					"user": schema.StringAttribute{
						MarkdownDescription: "Login user. Defaults to `root`.",
						Optional:            true,
					},
					"port": schema.Int64Attribute{
						MarkdownDescription: "SSH port. Defaults to `22`.",
						Optional:            true,
					},
					"private_key": schema.StringAttribute{
						MarkdownDescription: "PEM or OpenSSH private key for key authentication. Provider configuration is " +
							"never stored in plan or state, so this may come from an ephemeral resource or an ephemeral " +
							"variable: a key the CLI does not keep, which also serves refreshes and destroys.",
						Optional:   true,
						Sensitive:  true,
						Validators: []validator.String{sshPrivateKey},
					},
					"use_agent": schema.BoolAttribute{
						MarkdownDescription: "Authenticate through the agent at `SSH_AUTH_SOCK`. Defaults to `false`.",
						Optional:            true,
					},
					"known_hosts_file": schema.StringAttribute{
						MarkdownDescription: "known_hosts file used to pin host keys that are not given explicitly.",
						Optional:            true,
					},
				},
			},
		},
	}
}

func (p *kilnProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	c := &clients{}
	if d := cfg.SSH; d != nil {
		c.ssh = sshDefaults{User: d.User.ValueString(), Port: d.Port.ValueInt64(), PrivateKey: d.PrivateKey.ValueString(),
			UseAgent: d.UseAgent.ValueBool(), KnownHostsFile: d.KnownHosts.ValueString()}
	}
	cacheDir, err := toolchainCacheDir()
	if err != nil {
		resp.Diagnostics.AddError("No cache directory for Go toolchains", err.Error())
		return
	}
	c.toolchains = &gotoolchain.Fetcher{
		Cache: &gotoolchain.Cache{Dir: cacheDir},
		Log:   kilnLog,
	}
	c.goToolsDir = filepath.Join(filepath.Dir(cacheDir), "go-tools")
	if cfg.Libvirt != nil {
		uri := firstSet(cfg.Libvirt.URI.ValueString(), os.Getenv("LIBVIRT_DEFAULT_URI"), libvirt.DefaultURI)
		c.libvirt = libvirt.NewClient(uri)
		c.libvirt.Log = kilnLog
	}
	if cfg.Vsphere != nil {
		v := cfg.Vsphere
		insecure := v.AllowUnverifiedSSL.ValueBool()
		if v.AllowUnverifiedSSL.IsNull() {
			if env := os.Getenv("VSPHERE_ALLOW_UNVERIFIED_SSL"); env != "" {
				b, err := strconv.ParseBool(env)
				if err != nil {
					resp.Diagnostics.AddError("Invalid VSPHERE_ALLOW_UNVERIFIED_SSL",
						"VSPHERE_ALLOW_UNVERIFIED_SSL must be true or false, got "+strconv.Quote(env)+".")
					return
				}
				insecure = b
			}
		}
		c.vsphere = vsphere.NewClient(vsphere.Config{
			Server:             firstSet(v.Server.ValueString(), os.Getenv("VSPHERE_SERVER")),
			User:               firstSet(v.User.ValueString(), os.Getenv("VSPHERE_USER")),
			Password:           firstSet(v.Password.ValueString(), os.Getenv("VSPHERE_PASSWORD")),
			AllowUnverifiedSSL: insecure,
			Datacenter:         firstSet(v.Datacenter.ValueString(), os.Getenv("VSPHERE_DATACENTER")),
		})
		c.vsphere.Log = kilnLog
	}
	if cfg.Kubernetes != nil {
		k := cfg.Kubernetes
		kc := kube.NewClient(kube.Config{
			Kubeconfig: firstSet(k.ConfigPath.ValueString(), os.Getenv("KUBECONFIG")),
			Context:    k.ConfigContext.ValueString(),
			Host:       k.Host.ValueString(),
			Token:      k.Token.ValueString(),
			CACert:     k.ClusterCACertificate.ValueString(),
			ClientCert: k.ClientCertificate.ValueString(),
			ClientKey:  k.ClientKey.ValueString(),
		})
		kc.Log = kilnLog
		c.delivery = &delivery.Engine{Kube: kc, Log: kilnLog}
	}
	if r := cfg.Registry; r != nil {
		reg, err := registryOf(r.URL.ValueString(), r.Insecure.ValueBool())
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("registry").AtName("url"), "Invalid registry URL", err.Error())
			return
		}
		reg.Username, reg.Password = r.Username.ValueString(), r.Password.ValueString()
		c.registry = &reg
	}
	resp.ResourceData = c
	resp.DataSourceData = c
}

func (p *kilnProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newLibvirtVMResource,
		newVsphereVMResource,
		newGoHostResource,
		newProjectResource,
		newEnvironmentResource,
		newReleaseResource,
		newBuildPoolResource,
		newBuildResource,
		newTestResource,
		newVersionResource,
		newHostReleaseResource,
		newImageResource,
	}
}

func (p *kilnProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newGoReleaseDataSource,
		newHostFactsDataSource,
		newVsphereTemplateDataSource,
		newVsphereDatacenterDataSource,
		newVsphereClusterDataSource,
		newVsphereDatastoreDataSource,
		newVsphereNetworkDataSource,
		newReleaseHistoryDataSource,
		newEnvironmentStatusDataSource,
		newTestHistoryDataSource,
	}
}

// toolchainCacheDir is where verified Go archives are kept: KILN_CACHE_DIR, or
// the user's cache directory.
func toolchainCacheDir() (string, error) {
	if dir := os.Getenv("KILN_CACHE_DIR"); dir != "" {
		return filepath.Join(dir, "toolchains"), nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kiln", "toolchains"), nil
}

func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
