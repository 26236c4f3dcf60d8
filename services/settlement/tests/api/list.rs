use tonic::Code;

use crate::helpers::{gift_exchanged, list, spawn_app};

#[tokio::test]
async fn paging_through_seven_settlements_three_at_a_time_yields_three_three_and_one_oldest_first() {
    let mut app = spawn_app(None).await;
    let mut orders = Vec::new();
    for cost in 1..=7 {
        let exchanged = gift_exchanged("COFFEE-S", cost * 100);
        app.publish(&exchanged).await;
        orders.push(exchanged.order_id);
    }
    app.recorded(7).await;

    let first = app.client.list_settlements(list("", 3, "")).await.unwrap().into_inner();
    assert_eq!(first.settlements.len(), 3);
    assert!(!first.next_page_token.is_empty());
    let second = app.client.list_settlements(list("", 3, &first.next_page_token)).await.unwrap().into_inner();
    assert_eq!(second.settlements.len(), 3);
    assert!(!second.next_page_token.is_empty());
    assert_ne!(second.next_page_token, first.next_page_token);
    let third = app.client.list_settlements(list("", 3, &second.next_page_token)).await.unwrap().into_inner();
    assert_eq!(third.settlements.len(), 1);
    assert!(third.next_page_token.is_empty(), "the last page has no next page");

    let listed: Vec<String> =
        [first, second, third].into_iter().flat_map(|page| page.settlements).map(|s| s.order_id).collect();
    assert_eq!(listed, orders, "oldest first, each once");

    // Reading the first page again gives the same settlements: the order is stable.
    let again = app.client.list_settlements(list("", 3, "")).await.unwrap().into_inner();
    assert_eq!(
        again.settlements.iter().map(|s| &s.order_id).collect::<Vec<_>>(),
        orders.iter().take(3).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn filtering_by_product_lists_only_that_products_settlements_page_by_page() {
    let mut app = spawn_app(None).await;
    let mut cakes = Vec::new();
    for (i, sku) in ["COFFEE-S", "CAKE_L", "COFFEE-S", "CAKE_L", "COFFEE-S"].into_iter().enumerate() {
        let exchanged = gift_exchanged(sku, 100 + i64::try_from(i).unwrap());
        app.publish(&exchanged).await;
        if sku == "CAKE_L" {
            cakes.push(exchanged.order_id);
        }
    }
    app.recorded(5).await;

    let all = app.client.list_settlements(list("CAKE_L", 0, "")).await.unwrap().into_inner();
    assert_eq!(all.settlements.iter().map(|s| &s.order_id).collect::<Vec<_>>(), cakes.iter().collect::<Vec<_>>());
    assert!(all.settlements.iter().all(|s| s.product_sku == "CAKE_L"));
    assert!(all.next_page_token.is_empty());

    let first = app.client.list_settlements(list("CAKE_L", 1, "")).await.unwrap().into_inner();
    assert_eq!(first.settlements[0].order_id, cakes[0]);
    let second = app.client.list_settlements(list("CAKE_L", 1, &first.next_page_token)).await.unwrap().into_inner();
    assert_eq!(second.settlements.len(), 1);
    assert_eq!(second.settlements[0].order_id, cakes[1]);
    assert!(second.next_page_token.is_empty());

    let none = app.client.list_settlements(list("NO-SUCH-GIFT", 0, "")).await.unwrap().into_inner();
    assert!(none.settlements.is_empty());
    assert!(none.next_page_token.is_empty());
}

#[tokio::test]
async fn bad_page_sizes_page_tokens_and_skus_are_invalid_arguments_naming_the_field() {
    let mut app = spawn_app(None).await;
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let cases = [
        (list("", 501, ""), "page_size: must be between 0 and 500"),
        (list("", -1, ""), "page_size: must be between 0 and 500"),
        (list("", 0, "nope"), "page_token: is not a token this service issued"),
        (list("", 0, &hex("after:0")), "page_token: is not a token this service issued"),
        (list("", 0, &hex("something else")), "page_token: is not a token this service issued"),
        (list("coffee s", 0, ""), "product_sku: may only contain A-Z, 0-9, '-' and '_'"),
        (list(&"A".repeat(65), 0, ""), "product_sku: must be at most 64 characters"),
    ];
    for (request, message) in cases {
        let status = app.client.list_settlements(request).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, message));
    }

    // The bounds themselves are fine.
    for page_size in [0, 1, 500] {
        let page = app.client.list_settlements(list("", page_size, "")).await.unwrap();
        assert!(page.into_inner().next_page_token.is_empty());
    }
}
