from hotline.lsp.server import main

main()
