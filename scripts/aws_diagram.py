#!/usr/bin/env python3
"""Write docs/aws-architecture.svg: what moodle.platform.aws creates (plain SVG from Python, no graphviz).

    scripts/aws_diagram.py [output]      default docs/aws-architecture.svg
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
W, H = 980, 640

# (x, y, w, h, title, lines, fill)
BOXES = [
    (20, 20, 940, 600, "AWS region (moodle_platform_aws_region)", [], "#fbfbfb"),
    (40, 60, 900, 540, "VPC aws_network_vpc_cidr - 2-3 availability zones", [], "#f1f6fd"),
    (60, 100, 860, 120, "public subnets (one per zone)", [], "#e3f1e3"),
    (80, 135, 250, 70, "Application Load Balancer",
     ["HTTPS 443 (ACM certificate)", "HTTP 80 -> 301 HTTPS", "sg alb: 443/80 from 0.0.0.0/0"], "#ffffff"),
    (360, 135, 200, 70, "NAT gateway(s)", ["one, or one per zone", "(aws_network_nat_per_az)"], "#ffffff"),
    (590, 135, 310, 70, "Internet gateway + route tables",
     ["public: 0.0.0.0/0 -> IGW", "private: 0.0.0.0/0 -> NAT"], "#ffffff"),
    (60, 250, 860, 330, "private subnets (one per zone)", [], "#fdf0e3"),
    (80, 280, 400, 135, "Auto Scaling group: Debian 12 Docker hosts",
     ["launch template: IMDSv2, encrypted gp3 root", "profile: SSM, backup + SSM transfer bucket, EFS via AP",
      "sg web: 443 from the ALB only (SSH only from admin CIDRs)", "tags -> aws_ec2 inventory -> docker_hosts",
      "each: Compose web + TLS proxy :443, EFS mounted", "(TLS, IAM, access point); cron on one host only"],
     "#ffffff"),
    (510, 280, 390, 135, "target group (HTTPS :443 to the hosts)",
     ["health check GET /login/index.php", "instances registered by the ASG"], "#ffffff"),
    (80, 430, 260, 130, "RDS MariaDB 11.4 / PostgreSQL",
     ["Multi-AZ, encrypted, TLS only (RDS CA)", "parameter group utf8mb4_unicode_ci", "backups 7 d, deletion protection",
      "final snapshot on delete", "sg db: 3306/5432 from web"], "#ffffff"),
    (360, 430, 260, 130, "ElastiCache Redis",
     ["replication group + replica", "AUTH token, TLS in transit", "encryption at rest", "sg cache: 6379 from web"],
     "#ffffff"),
    (640, 430, 260, 130, "EFS moodledata",
     ["encrypted, mount target per zone", "access point uid/gid 33 (www-data)", "sg efs: 2049 from web"], "#ffffff"),
]
OUTSIDE = [
    (40, 0, "S3 backup bucket: versioning, SSE, public access blocked, lifecycle  |  Secrets Manager: moodle-platform/<site>/*"),
]
ARROWS = [((205, 205), (280, 280), "HTTPS :443"), ((280, 415), (210, 430), ""), ((280, 415), (490, 430), ""),
          ((280, 415), (770, 430), ""), ((330, 170), (510, 340), "")]


def render() -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 40}" viewBox="0 0 {W} {H + 40}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
           '<path d="M0,0 L10,4 L0,8 z" fill="#444"/></marker></defs>',
           f'<rect x="0" y="0" width="{W}" height="{H + 40}" fill="#ffffff"/>']
    for x, y, w, h, title, lines, fill in BOXES:
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" stroke="#555"/>')
        out.append(f'<text x="{x + 8}" y="{y + 16}" font-weight="bold">{escape(title)}</text>')
        for i, line in enumerate(lines):
            out.append(f'<text x="{x + 8}" y="{y + 33 + 14 * i}">{escape(line)}</text>')
    for (x1, y1), (x2, y2), label in ARROWS:
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#444" marker-end="url(#a)"/>')
        if label:
            out.append(f'<text x="{(x1 + x2) / 2 + 6}" y="{(y1 + y2) / 2}">{escape(label)}</text>')
    for x, _, text in OUTSIDE:
        out.append(f'<text x="{x}" y="{H + 30}" font-weight="bold">{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/aws-architecture.svg"
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
