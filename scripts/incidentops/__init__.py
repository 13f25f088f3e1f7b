"""incidentops: GitOps incident response for a GitHub repository and Cloudflare Workers/Pages."""

__version__ = "0.1.0"
