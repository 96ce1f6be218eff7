module "example.com/\qapp"

go 1.21
