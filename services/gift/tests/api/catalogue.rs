use api::game::gift::v1 as pb;

use crate::helpers::spawn_app;
use testkit::AsCaller;

#[tokio::test]
async fn the_catalogue_lists_the_products_in_display_order_with_price_and_stock() {
    let app = spawn_app(None).await;
    let products = app
        .client
        .clone()
        .list_products(pb::ListProductsRequest {}.by_player("player-1"))
        .await
        .unwrap()
        .into_inner()
        .products;
    let listed: Vec<(&str, i64, i64)> = products.iter().map(|p| (p.sku.as_str(), p.price_points, p.stock)).collect();
    assert_eq!(
        listed,
        [
            ("STICKER-PACK", 100, 1000),
            ("AVATAR-FRAME", 300, 500),
            ("GAME-SOUNDTRACK", 500, 200),
            ("PLUSH-MASCOT", 800, 25),
            ("LIMITED-FIGURE", 2000, 3),
        ]
    );
    assert!(products.iter().all(|p| !p.name.is_empty()));
}
